"""``python -m shield_orchestrator.api``: the API under uvicorn, on the rendered host and port.

The systemd unit runs this; SHIELD_* secrets come from its EnvironmentFile. A configuration
error (for example no SHIELD_API_KEYS) is printed on one line naming the variable, exit 2.
:func:`serve` is how the service runs an app (bench/bench_api.py measures it the same way):
uvicorn with uvloop and httptools (``uvicorn[standard]``, pinned), no access log (request
counts and latency are in /metrics), the connection bounds of the app's ApiConfig (header
size, count and time in api/protocol.py; keep-alive timeout; concurrency limit), and the
objects that live as long as the process (imported modules, the app) frozen out of the
garbage collector, so that a full collection does not walk them in the middle of a request.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import socket
import sys

import uvicorn
from fastapi import FastAPI

from shield_orchestrator.api.app import create_app
from shield_orchestrator.api.config import ApiConfig
from shield_orchestrator.api.protocol import bounded_protocol
from shield_orchestrator.errors import ConfigError
from shield_orchestrator.logs import setup_logging
from shield_orchestrator.settings import load_settings

STARTUP_FAILURE = 3  # uvicorn's exit status when the server could not start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shield_orchestrator.api")
    defaults = ApiConfig()
    parser.add_argument("--host", default=defaults.bind_host, help="bind address (rendered)")
    parser.add_argument("--port", type=int, default=defaults.port, help="TCP port (rendered)")
    parser.add_argument("--log-level", default="info")
    args = parser.parse_args(argv)
    setup_logging(args.log_level.upper())
    try:
        app = create_app(load_settings())
    except ConfigError as exc:
        print(f"shield-orchestrator-api: {exc}", file=sys.stderr)
        return 2
    serve(app, args.host, args.port)
    return 0


def serve(app: FastAPI, host: str, port: int, sockets: list[socket.socket] | None = None) -> None:
    """Run ``app`` under uvicorn until SIGTERM/SIGINT, as the service does (on ``sockets``
    already bound, when given: several processes can then share a port)."""
    server = uvicorn.Server(server_config(app, host, port))
    gc.collect()
    gc.freeze()  # startup objects: never collected, so never walked again
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=sockets)
    if not server.started:  # as uvicorn.run: a server that never started is a failed start
        sys.exit(STARTUP_FAILURE)


def server_config(app: FastAPI, host: str, port: int) -> uvicorn.Config:
    """The uvicorn configuration of ``app`` (a create_app app: its ApiConfig sets the bounds)."""
    api: ApiConfig = app.state.config
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="uvloop",
        http=bounded_protocol(api.max_header_bytes, api.max_headers, api.header_timeout_s),
        log_config=None,  # keep our handler (logs.setup_logging)
        access_log=False,  # request counts and latency are in /metrics
        proxy_headers=False,
        server_header=False,
        timeout_keep_alive=api.keep_alive_timeout_s,
        limit_concurrency=api.limit_concurrency,  # open connections; beyond: 503
        timeout_graceful_shutdown=10,
    )


if __name__ == "__main__":
    sys.exit(main())
