"""``python -m shield_orchestrator.api``: the API under uvicorn, on the rendered host and port.

The systemd unit runs this; SHIELD_* secrets come from its EnvironmentFile. A configuration
error (for example no SHIELD_API_KEYS) is printed on one line naming the variable, exit 2; a
port that cannot be bound exits 3. Then it binds the port once and serves it from
``--processes`` (default ``orchestrator_api_processes``) uvicorn processes that share that
socket (api/processes.py: rolling restart on SIGHUP; metrics summed over the processes).
:func:`serve` runs one app in this process (the tests and bench/bench_api.py use it), with
the same :func:`server_config` as every child of the service:
uvicorn with uvloop and httptools (``uvicorn[standard]``, pinned), no access log (request
counts and latency are in /metrics), the connection bounds of the app's ApiConfig (header
size, count and time in api/protocol.py; keep-alive timeout; concurrency limit), and the
objects that live as long as the process (imported modules, the app) frozen out of the
garbage collector, so that a full collection does not walk them in the middle of a request.
HTTPS when the rendered ApiConfig names a certificate (orchestrator_tls_enabled; ``--tls-cert``
and ``--tls-key`` give other paths, as the tests do): every process serves TLS 1.2+ with it
(api/processes.py: tls_context); an unusable certificate or key exits 2 naming the file.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import socket
import sys

import uvicorn
from fastapi import FastAPI

from shield_orchestrator.api import processes
from shield_orchestrator.api.app import create_app
from shield_orchestrator.api.config import ApiConfig
from shield_orchestrator.api.protocol import bounded_protocol
from shield_orchestrator.errors import ConfigError
from shield_orchestrator.logs import setup_logging
from shield_orchestrator.settings import load_settings

STARTUP_FAILURE = processes.STARTUP_FAILURE
log = logging.getLogger(__name__)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m shield_orchestrator.api")
    defaults = ApiConfig()
    parser.add_argument("--host", default=defaults.bind_host, help="bind address (rendered)")
    parser.add_argument("--port", type=int, default=defaults.port, help="TCP port (rendered)")
    parser.add_argument(
        "--processes", type=int, default=defaults.processes, help="uvicorn processes (rendered)"
    )
    parser.add_argument("--log-level", default="info")
    parser.add_argument(
        "--tls-cert", default=defaults.tls_cert_file, help="HTTPS certificate (rendered; '': HTTP)"
    )
    parser.add_argument("--tls-key", default=defaults.tls_key_file, help="its key file (rendered)")
    args = parser.parse_args(argv)
    defaults = dataclasses.replace(defaults, tls_cert_file=args.tls_cert, tls_key_file=args.tls_key)
    setup_logging(args.log_level.upper())
    if args.processes < 1:
        print(f"shield-orchestrator-api: --processes {args.processes}: at least 1", file=sys.stderr)
        return 2
    try:
        settings = load_settings()
        create_app(settings, defaults)  # the configuration errors, here, before any child
        processes.check_tls(defaults.tls_cert_file, defaults.tls_key_file)
    except ConfigError as exc:
        print(f"shield-orchestrator-api: {exc}", file=sys.stderr)
        return 2
    try:
        sock = processes.listen(args.host, args.port)
    except OSError as exc:
        log.error("cannot listen on %s:%s: %s", args.host, args.port, exc,
                  extra={"action": "api_start_failed"})  # fmt: skip
        return STARTUP_FAILURE
    # each child reads settings, ApiConfig and the bounds afresh: a reload applies them
    factory = processes.AppFactory(log_level=args.log_level.upper())
    config = server_config(None, args.host, args.port, defaults)
    config.rendered = True
    return processes.run_processes(factory, config, sock, args.processes, settings.api_metrics_dir)


def serve(app: FastAPI, host: str, port: int, sockets: list[socket.socket] | None = None) -> None:
    """Run ``app`` under uvicorn until SIGTERM/SIGINT, as the service does (on ``sockets``
    already bound, when given: several processes can then share a port)."""
    server = uvicorn.Server(server_config(processes.frozen(app), host, port))
    with contextlib.suppress(KeyboardInterrupt):
        server.run(sockets=sockets)
    if not server.started:  # as uvicorn.run: a server that never started is a failed start
        sys.exit(STARTUP_FAILURE)


def server_config(
    app: FastAPI | None, host: str, port: int, api: ApiConfig | None = None
) -> processes.PicklableConfig:
    """The uvicorn configuration of ``app`` (a create_app app: its ApiConfig sets the bounds
    unless ``api`` is given; ``app`` None: set later, run_processes gives its factory)."""
    api = api or app.state.config  # type: ignore[union-attr]
    return processes.PicklableConfig(
        app,  # type: ignore[arg-type]
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
        # a new process must serve within this (uvicorn's 5 s is less than a start on a busy
        # host: the rolling restart is then abandoned, old processes kept); also how long a
        # process may leave the main process's health ping unanswered before it is replaced
        timeout_worker_healthcheck=processes.CHILD_START_TIMEOUT_S,
        # HTTPS: paths only (each process reads the files); tls_context sets TLS 1.2+
        ssl_certfile=api.tls_cert_file or None,
        ssl_keyfile=api.tls_key_file or None,
        ssl_context_factory=processes.tls_context if api.tls_cert_file else None,
    )


if __name__ == "__main__":
    sys.exit(main())
