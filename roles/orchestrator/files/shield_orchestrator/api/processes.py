"""N API processes behind one port: uvicorn's own multiprocess supervisor, one socket.

``python -m shield_orchestrator.api`` (the systemd unit's main process) binds the port once
and runs :func:`run_processes`: uvicorn's ``Multiprocess`` manager spawns
``orchestrator_api_processes`` children that all accept on that one inherited listening
socket. Each child builds its own app (:class:`AppFactory`: Redis client, asyncpg pool,
metrics) and runs it under the same ``uvicorn.Config`` as a single process
(api/__main__.py ``server_config``: bounded httptools protocol, keep-alive timeout,
concurrency limit, key gate before the body), so every protection holds in every process.

Why one shared socket rather than N processes binding the port with SO_REUSEPORT (measured
in bench/REPORT.md, the API section): with one accept queue, a connection waits for whichever
process is free, where SO_REUSEPORT hashes it to one process whatever that process is busy
with; and the socket outlives any one process, so a child that stops closes nothing the
others serve from (with SO_REUSEPORT, connections queued on a closing listener are reset).

Signals to the main process (systemd sends them to it alone: ``KillMode=mixed``):
- SIGTERM / SIGINT: every child shuts down gracefully (stops accepting, finishes in-flight
  requests and ends SSE streams within ``timeout_graceful_shutdown``), then the main process
  exits by the same signal, as a single uvicorn process does.
- SIGHUP (``systemctl reload``): a rolling restart. For each child in turn a new one is
  started (it imports the code and reads its rendered modules afresh: settings, ApiConfig and
  the connection bounds of the redeployed files, see :class:`AppFactory`) and, once it
  serves, the old one is stopped gracefully; the socket stays open all along, so no request
  is refused. What a reload cannot change: the listening address and port and the number of
  processes (the main process's; the unit passes them, so a change restarts), the
  environment (the EnvironmentFile: restart), and the main process's own code. A new
  child that does not serve within CHILD_START_TIMEOUT_S is killed and the restart abandoned
  (logged "was not ready in time"): the old children keep serving the old code.
- SIGTTIN / SIGTTOU: one process more / fewer. A child that dies is replaced; a child that
  fails before it serves (exit 3) stops the whole service, which then exits 3.

HTTPS (``ApiConfig.tls_cert_file``, on with orchestrator_tls_enabled): the configuration each
child receives carries the certificate's and the key's paths (never the key itself: a path
crosses the spawn boundary, the file is read in the child) and :func:`tls_context`, which
every child calls when it loads its configuration: TLS 1.2 or later, the certificate chain
from the file. The socket is plain TCP and shared; each child wraps its own connections, so
no plaintext request is ever answered. A reload's new children read the files afresh: a
renewed certificate at the same path is served after ``systemctl reload``. The main process
loads them once before any child starts (:func:`check_tls`): an unreadable or mismatched
pair is one line naming the file, exit 2, instead of N children failing.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI
from uvicorn.supervisors.multiprocess import Multiprocess

from shield_orchestrator.api.app import create_app
from shield_orchestrator.api.config import ApiConfig
from shield_orchestrator.api.protocol import bounded_protocol
from shield_orchestrator.errors import ConfigError
from shield_orchestrator.logs import setup_logging
from shield_orchestrator.settings import Settings, load_settings

log = logging.getLogger(__name__)

STARTUP_FAILURE = 3  # uvicorn's exit status when the server could not start
LISTEN_BACKLOG = 2048  # connections the kernel queues while every process is busy
CHILD_START_TIMEOUT_S = 60  # a reload's new process must serve within this (else: aborted)
TLS_MINIMUM = ssl.TLSVersion.TLSv1_2  # older clients are refused in the handshake
App = TypeVar("App")


@dataclass(frozen=True)
class AppFactory:
    """Builds the API app in a child process (crosses the spawn boundary by pickle).

    ``settings`` / ``config`` None (the service): the child reads them itself, from its own
    fresh import of the rendered modules (settings.py, api/config.py) and the environment, so
    that a process started by a reload applies a redeployed configuration, not the one the
    main process read at its start (the environment is the main process's: an EnvironmentFile
    change needs a restart)."""

    settings: Settings | None = None
    config: ApiConfig | None = None
    log_level: str = "INFO"

    def __call__(self) -> FastAPI:
        setup_logging(self.log_level)
        settings = self.settings if self.settings is not None else load_settings()
        return frozen(create_app(settings, self.config or ApiConfig()))


def frozen(app: App) -> App:
    """``app``, after the objects that live as long as the process (imported modules, the
    app) are frozen out of the garbage collector: a full collection never walks them."""
    gc.collect()
    gc.freeze()
    return app


class PicklableConfig(uvicorn.Config):
    """uvicorn.Config that crosses the spawn boundary to a child: its http protocol class
    (made by bounded_protocol, not importable by name) travels as its three bounds.

    With ``rendered`` set (the service), the child takes the connection bounds (header size,
    count and time, keep-alive timeout, concurrency limit) from its own fresh ApiConfig
    instead, as :class:`AppFactory` does the app's: a reload applies them too."""

    rendered: bool = False

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        http = state.pop("http")
        state["_header_bounds"] = (http.max_header_bytes, http.max_headers, http.header_timeout_s)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        bounds = state.pop("_header_bounds")
        self.__dict__.update(state)
        if self.rendered:
            api = ApiConfig()
            bounds = (api.max_header_bytes, api.max_headers, api.header_timeout_s)
            self.timeout_keep_alive = api.keep_alive_timeout_s
            self.limit_concurrency = api.limit_concurrency
        self.http = bounded_protocol(*bounds)


def tls_context(config: uvicorn.Config, default: Callable[[], ssl.SSLContext]) -> ssl.SSLContext:
    """uvicorn's ``ssl_context_factory``, called in each process as it loads its configuration:
    uvicorn's own server context (certificate chain and key from ``config.ssl_certfile`` /
    ``ssl_keyfile``), TLS 1.2 at the least. A module function: it crosses to the children."""
    context = default()
    context.minimum_version = TLS_MINIMUM
    return context


def check_tls(cert_file: str, key_file: str) -> None:
    """Load the certificate and key as each process will (ConfigError naming the file if not);
    nothing when HTTPS is off (``cert_file`` empty). The key's text is never printed."""
    if not cert_file:
        return
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(cert_file, key_file or None)
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            "tls_cert_file/tls_key_file",
            f"{cert_file} / {key_file}",
            f"Cannot serve HTTPS with them: {reason}. The role installs them"
            " (orchestrator_tls_enabled, tasks/tls.yml): the key must be readable by the service"
            " user alone and match the certificate.",
        ) from exc


class Supervisor(Multiprocess):
    """uvicorn's Multiprocess, remembering the signal that stopped it."""

    stopped_by: int | None = None

    def handle_term(self) -> None:
        self.stopped_by = signal.SIGTERM
        super().handle_term()

    def handle_int(self) -> None:
        self.stopped_by = signal.SIGINT
        super().handle_int()


def listen(host: str, port: int) -> socket.socket:
    """The one listening socket every process accepts on (OSError if the port is taken)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(LISTEN_BACKLOG)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def clean_metrics_dir(path: str | None) -> None:
    """Remove the previous run's metric files (prometheus-client multiprocess mode)."""
    if path:
        for stale in Path(path).glob("*.db"):
            stale.unlink(missing_ok=True)


def run_processes(
    factory: Callable[[], FastAPI],
    config: uvicorn.Config,
    sock: socket.socket,
    processes: int,
    metrics_dir: str | None = None,
) -> int:
    """Serve ``factory``'s app from ``processes`` children on ``sock`` until SIGTERM/SIGINT;
    the exit status (after re-raising the stopping signal, as uvicorn does) or 3."""
    clean_metrics_dir(metrics_dir)
    config.app, config.factory, config.workers = factory, True, processes
    supervisor = Supervisor(config, sockets=[sock])
    supervisor.run()
    sock.close()
    if any(p.exitcode == STARTUP_FAILURE for p in supervisor.processes):
        return STARTUP_FAILURE
    if supervisor.stopped_by is not None:
        signal.signal(supervisor.stopped_by, signal.SIG_DFL)
        os.kill(os.getpid(), supervisor.stopped_by)
    return 0
