"""``python -m shield_orchestrator.api``: the API under uvicorn, on the rendered host and port.

The systemd unit runs this; SHIELD_* secrets come from its EnvironmentFile. A configuration
error (for example no SHIELD_API_KEYS) is printed on one line naming the variable, exit 2.
"""

from __future__ import annotations

import argparse
import sys

import uvicorn

from shield_orchestrator.api.app import create_app
from shield_orchestrator.api.config import ApiConfig
from shield_orchestrator.errors import ConfigError
from shield_orchestrator.logs import setup_logging
from shield_orchestrator.settings import load_settings


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
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_config=None,  # keep our handler (logs.setup_logging)
        access_log=False,  # request counts and latency are in /metrics
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=10,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
