"""Real redis-server and PostgreSQL instances on free loopback ports, owned by the test session.

Each server lives in its own temporary directory and is stopped by PID when the session
ends. PostgreSQL refuses to run as root, so as root it runs as the ``postgres`` system user.

TLS (issue 20): ``issue_certificate`` runs the redis role's own issuing tasks
(roles/redis/tasks/tls_issue.yml: openssl on the controller) against a CA directory; a server
given those ``TlsFiles`` listens with TLS only (Redis: ``port 0`` + ``tls-port``; PostgreSQL:
``ssl = on`` and ``hostssl`` instead of ``host`` in pg_hba.conf).
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

LOOPBACK = "127.0.0.1"
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class TlsFiles:
    """A server's TLS material: the CA certificate, its certificate and its key (paths)."""

    ca: Path
    cert: Path
    key: Path


def issue_certificate(ca_dir: Path, name: str, sans: list[str]) -> TlsFiles:
    """Issue a server certificate for ``sans`` (``IP:127.0.0.1``, ``DNS:x``) with the role's tasks.

    The CA in ``ca_dir`` is made on first use, as a deployment's first run makes it.
    """
    playbook = ca_dir.parent / f"issue-{name}.yml"
    playbook.write_text(
        yaml.safe_dump([{
            "name": "Issue a test certificate", "hosts": "localhost", "connection": "local",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
            "tasks": [{"name": "Issue", "ansible.builtin.include_role": {
                "name": "redis", "tasks_from": "tls_issue.yml"}, "vars": {
                "__redis_tls_issue_dir": str(ca_dir), "__redis_tls_issue_name": name,
                "__redis_tls_issue_sans": sans}}],
        }])
    )  # fmt: skip
    ansible = Path(sys.executable).parent / "ansible-playbook"
    done = subprocess.run(
        [str(ansible), "-i", "localhost,", str(playbook)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"issuing {name} failed:\n{done.stdout[-3000:]}\n{done.stderr[-2000:]}")
    [cert] = ca_dir.glob(f"{name}-*.crt")
    return TlsFiles(ca=ca_dir / "ca.crt", cert=cert, key=ca_dir / f"{name}.key")


def free_port() -> int:
    """A TCP port on loopback that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before listening on {port}")
        with contextlib.suppress(OSError), socket.create_connection((LOOPBACK, port), 0.2):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {LOOPBACK}:{port} after {timeout_s}s")


def _stop(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout_s: float = 15) -> None:
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@dataclass
class RedisServer:
    """A redis-server child process (AOF off unless asked; restartable on the same port)."""

    port: int
    password: str
    workdir: Path
    appendonly: bool = False
    proc: subprocess.Popen[bytes] | None = None
    tls: TlsFiles | None = None  # TLS only: port 0, tls-port = port

    @property
    def url(self) -> str:
        return f"redis://:{self.password}@{LOOPBACK}:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        args = [
            binary, "--port", str(self.port), "--bind", LOOPBACK, "--save", "",
            "--appendonly", "yes" if self.appendonly else "no", "--appendfsync", "everysec",
            "--dir", str(self.workdir), "--requirepass", self.password,
            "--maxmemory-policy", "noeviction", "--daemonize", "no", "--loglevel", "warning",
        ]  # fmt: skip
        if self.tls is not None:
            args += [
                "--port", "0", "--tls-port", str(self.port), "--tls-cert-file", str(self.tls.cert),
                "--tls-key-file", str(self.tls.key), "--tls-ca-cert-file", str(self.tls.ca),
                "--tls-auth-clients", "optional",
            ]  # fmt: skip
        with (self.workdir / "redis.log").open("ab") as log:  # the child keeps its own fd
            self.proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        wait_for_port(self.port, 10, self.proc)

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.proc is not None:
            _stop(self.proc, sig)
            self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


def _pg_bindir() -> Path:
    root = Path("/usr/lib/postgresql")
    versions = sorted((p for p in root.glob("*/bin/postgres")), key=lambda p: int(p.parts[-3]))
    if not versions:
        raise RuntimeError("no PostgreSQL server binaries under /usr/lib/postgresql: make venv")
    return versions[-1].parent


@dataclass
class PostgresServer:
    """A PostgreSQL cluster in a temp dir, with a password-protected superuser on loopback."""

    port: int
    password: str
    datadir: Path
    user: str = "shield_test"
    proc: subprocess.Popen[bytes] | None = None
    tls: TlsFiles | None = None  # ssl = on, and TCP logins only over TLS (hostssl)

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://{self.user}:{self.password}@{LOOPBACK}:{self.port}/{database}"

    def _run_as(self) -> dict[str, object]:
        if os.geteuid() != 0:
            return {}
        pw = pwd.getpwnam("postgres")
        return {"user": pw.pw_uid, "group": pw.pw_gid}

    def init(self) -> None:
        pwfile = self.datadir.parent / "pwfile"
        pwfile.write_text(self.password)
        if os.geteuid() == 0:
            pw = pwd.getpwnam("postgres")
            for p in (self.datadir.parent, pwfile):
                os.chown(p, pw.pw_uid, pw.pw_gid)
        subprocess.run(
            [str(_pg_bindir() / "initdb"), "-D", str(self.datadir), "-U", self.user,
             "--pwfile", str(pwfile), "--auth", "scram-sha-256", "-E", "UTF8", "--no-sync"],
            check=True, capture_output=True, **self._run_as(),  # type: ignore[arg-type]
        )  # fmt: skip
        if self.tls is not None:
            self._tls_only()

    def _tls_only(self) -> None:
        """``hostssl`` for every TCP line of pg_hba.conf, and a key only the server reads."""
        assert self.tls is not None
        hba = self.datadir / "pg_hba.conf"
        lines = hba.read_text().splitlines()
        hba.write_text("".join(
            ("hostssl" + line[4:] if line.startswith("host ") else line) + "\n" for line in lines
        ))  # fmt: skip
        # copies the server user reads (the CA directory is 0700); the key 0600, as PostgreSQL wants
        for src, dest in ((self.tls.key, "server.key"), (self.tls.cert, "server.crt"),
                          (self.tls.ca, "ca.crt")):  # fmt: skip
            path = self.datadir.parent / dest
            shutil.copyfile(src, path)
            path.chmod(0o600)
            if os.geteuid() == 0:
                pw = pwd.getpwnam("postgres")
                os.chown(path, pw.pw_uid, pw.pw_gid)

    def start(self) -> None:
        args = [
            str(_pg_bindir() / "postgres"), "-D", str(self.datadir), "-p", str(self.port),
            "-c", f"listen_addresses={LOOPBACK}", "-c", f"unix_socket_directories={self.datadir}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=200",
        ]  # fmt: skip
        if self.tls is not None:
            args += [
                "-c", "ssl=on", "-c", f"ssl_cert_file={self.datadir.parent / 'server.crt'}",
                "-c", f"ssl_key_file={self.datadir.parent / 'server.key'}",
                "-c", f"ssl_ca_file={self.datadir.parent / 'ca.crt'}",
            ]  # fmt: skip
        with (self.datadir.parent / "postgres.log").open("ab") as log:  # the child keeps its fd
            self.proc = subprocess.Popen(
                args,
                stdout=log,
                stderr=subprocess.STDOUT,
                **self._run_as(),  # type: ignore[arg-type]
            )
        wait_for_port(self.port, 30, self.proc)
        self._wait_ready(30)

    def _wait_ready(self, timeout_s: float) -> None:
        """The port opens before recovery ends ("the database system is starting up")."""
        isready = _pg_bindir() / "pg_isready"
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            probe = [str(isready), "-q", "-h", LOOPBACK, "-p", str(self.port), "-d", "postgres"]
            if subprocess.run(probe, check=False).returncode == 0:
                return
            time.sleep(0.05)
        raise TimeoutError(f"PostgreSQL on {LOOPBACK}:{self.port} not ready after {timeout_s}s")

    def stop(self) -> None:
        if self.proc is not None:
            _stop(self.proc, signal.SIGINT)  # fast shutdown
            self.proc = None


@contextlib.contextmanager
def redis_server(appendonly: bool = False, tls: TlsFiles | None = None) -> Iterator[RedisServer]:
    with tempfile.TemporaryDirectory(prefix="shield-redis-") as d:
        server = RedisServer(port=free_port(), password="redis-test-pw", workdir=Path(d),
                             appendonly=appendonly, tls=tls)  # fmt: skip
        server.start()
        try:
            yield server
        finally:
            server.stop()


@contextlib.contextmanager
def postgres_server(tls: TlsFiles | None = None) -> Iterator[PostgresServer]:
    with tempfile.TemporaryDirectory(prefix="shield-pg-") as d:
        os.chmod(d, 0o755)  # noqa: S103 - the postgres user must traverse it
        server = PostgresServer(
            port=free_port(), password="pg-test-pw", datadir=Path(d) / "data", tls=tls
        )
        server.init()
        server.start()
        try:
            yield server
        finally:
            server.stop()
