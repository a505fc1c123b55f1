"""A git smart-HTTP remote on the loopback that requires HTTP Basic authentication.

``git http-backend`` (git's own CGI program) behind a stdlib WSGI server in a thread of the
test process, serving the bare repositories under ``root``. A request without the right
``Authorization`` gets 401 with a Basic challenge, which is what makes git ask its askpass
program; every request is recorded (method, path with query, whether it was authorized, its
raw Authorization header) so that a test can say what git sent and what it did not.
"""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from tests.support.servers import LOOPBACK


@dataclass(frozen=True)
class Seen:
    method: str
    target: str  # path and query string, as requested
    authorized: bool
    authorization: str  # the raw header ("" when absent)


@dataclass
class GitHttpServer:
    root: Path
    user: str
    password: str
    port: int = 0
    seen: list[Seen] = field(default_factory=list)

    def url(self, name: str) -> str:
        return f"http://{LOOPBACK}:{self.port}/{name}"

    def _expected(self) -> str:
        return "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()

    def app(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        header = environ.get("HTTP_AUTHORIZATION", "")
        query = environ.get("QUERY_STRING", "")
        target = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
        ok = header == self._expected()
        self.seen.append(Seen(environ["REQUEST_METHOD"], target, ok, header))
        if not ok:
            start_response("401 Unauthorized", [("WWW-Authenticate", 'Basic realm="git"'),
                                                ("Content-Length", "0")])  # fmt: skip
            return [b""]
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else b""
        cgi = {
            "GIT_PROJECT_ROOT": str(self.root), "GIT_HTTP_EXPORT_ALL": "1",
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "REQUEST_METHOD": environ["REQUEST_METHOD"], "PATH_INFO": environ.get("PATH_INFO", ""),
            "QUERY_STRING": query, "CONTENT_TYPE": environ.get("CONTENT_TYPE", ""),
            "CONTENT_LENGTH": str(len(body)), "REMOTE_USER": self.user,
            "REMOTE_ADDR": LOOPBACK, "GIT_CONFIG_NOSYSTEM": "1", "HOME": str(self.root),
        }  # fmt: skip
        cgi.update({k: v for k, v in environ.items() if k.startswith("HTTP_")
                    and k != "HTTP_AUTHORIZATION"})  # fmt: skip
        done = subprocess.run(["git", "http-backend"], input=body, env=cgi,
                              capture_output=True, check=False)  # fmt: skip
        head, sep, payload = done.stdout.partition(b"\r\n\r\n")
        if not sep:
            head, _, payload = done.stdout.partition(b"\n\n")
        status = "200 OK"
        headers: list[tuple[str, str]] = []
        for line in head.decode("latin-1").splitlines():
            name, _, value = line.partition(":")
            if name.lower() == "status":
                status = value.strip()
            elif name:
                headers.append((name.strip(), value.strip()))
        headers.append(("Content-Length", str(len(payload))))
        start_response(status, headers)
        return [payload]


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def git_http_server(root: Path, user: str, password: str) -> Iterator[GitHttpServer]:
    """The server, listening on a free loopback port until the block ends."""
    server = GitHttpServer(root, user, password)
    httpd: WSGIServer = make_server(LOOPBACK, 0, server.app, handler_class=_Quiet)
    server.port = httpd.server_address[1]
    thread = threading.Thread(target=httpd.serve_forever, name="git-http", daemon=True)
    thread.start()
    try:
        yield server
    finally:
        httpd.shutdown()
        thread.join(10)
        httpd.server_close()
