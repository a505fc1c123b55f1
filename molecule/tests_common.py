"""Helpers shared by the molecule verifiers (testinfra, podman backend).

Each scenario's ``tests/conftest.py`` puts this directory on ``sys.path``. Host names come
from molecule's inventory (``MOLECULE_INVENTORY_FILE``) by group, so the same test files
serve every scenario whatever its container names are.

What the tests assume about the deployment (kept in one place, see harness/README.md):
the app units read their secrets from the ``EnvironmentFile`` of the API unit
(``SHIELD_REDIS_PASSWORD``, ``SHIELD_POSTGRES_PASSWORD``, ``SHIELD_API_KEYS``); the API
listens on port ``API_PORT``; Redis and PostgreSQL on their standard ports.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import testinfra
import yaml

API_UNIT = "shield-orchestrator-api"
WORKER_UNIT = "shield-orchestrator-worker@"
DATA_UNITS = {"redis": "redis-server", "postgresql": "postgresql"}
API_PORT = 8000
REDIS_PORT = 6379
POSTGRES_PORT = 5432
STREAM_PREFIX = "shield:ingestion_queue"  # orchestrator_ingestion_stream; + ":<workspace>"
STREAM = f"{STREAM_PREFIX}:default"  # the first (default) workspace's stream
GROUP = "lightrag-workers"
HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict", "PrivateTmp": "yes"}
LOOPBACK = {"127.0.0.1", "::1"}
# TLS between hosts (orchestrator_tls_enabled, on when the deployment spans several hosts): the
# CA certificate a Redis host (roles/redis) and an app host (roles/orchestrator) verify with
REDIS_CA = "/etc/redis/tls/ca.crt"
APP_CA = "/etc/shield-orchestrator/tls/ca.crt"
# ... and the API then serves HTTPS only, with this certificate (roles/orchestrator tasks/tls.yml)
API_CERT = "/etc/shield-orchestrator/tls/api.crt"
API_KEY_FILE = "/etc/shield-orchestrator/tls/api.key"


# --- inventory ------------------------------------------------------------------------------
def _inventory() -> dict[str, Any]:
    path = os.environ.get("MOLECULE_INVENTORY_FILE")
    if not path:
        raise RuntimeError("MOLECULE_INVENTORY_FILE is not set: run these tests via molecule")
    data: dict[str, Any] = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return data


def hosts_in(*groups: str) -> list[str]:
    """Inventory hosts in any of ``groups`` (sorted), for ``testinfra_hosts``.

    Fails when there is none: an empty ``testinfra_hosts`` would skip every test silently.
    """
    inventory = _inventory()
    # molecule writes groups at the top level; a hand-written inventory nests them in all.children
    found = {**inventory.get("all", {}).get("children", {}), **inventory}
    names = sorted({h for g in groups for h in (found.get(g) or {}).get("hosts") or {}})
    if not names:
        raise RuntimeError(
            f"no host in inventory groups {groups} ({os.environ['MOLECULE_INVENTORY_FILE']})"
        )
    return names


def host(name: str) -> Any:
    """A testinfra host for another container of the scenario (podman backend)."""
    return testinfra.get_host(f"podman://{name}")


# --- units ----------------------------------------------------------------------------------
def journal(h: Any, unit: str, lines: int = 200) -> str:
    """The unit's last ``lines`` journal lines (printed when a check of that unit fails)."""
    return str(h.run(f"journalctl -u {shlex.quote(unit)} --no-pager -n {lines}").stdout)


def fail_with_journal(h: Any, unit: str, problem: str) -> None:
    """Print the unit's journal, then fail with one line naming the unit and the problem."""
    print(f"----- journalctl -u {unit} --no-pager -n 200 -----\n{journal(h, unit)}")
    raise AssertionError(f"{unit}: {problem} (its journal is printed above)")


def assert_active_enabled(h: Any, unit: str) -> None:
    """Active, running, enabled, and not crash-looping (a looping unit can look active)."""
    props = unit_properties(h, unit, ["ActiveState", "SubState", "NRestarts", "UnitFileState"])
    enabled = h.run(f"systemctl is-enabled {shlex.quote(unit)}").stdout.strip()
    state = f"{props.get('ActiveState')}/{props.get('SubState')}"
    restarts = int(props.get("NRestarts") or 0)
    if state not in ("active/running", "active/exited") or enabled != "enabled" or restarts:
        fail_with_journal(h, unit, f"state={state} is-enabled={enabled or '?'} restarts={restarts}")


def unit_properties(h: Any, unit: str, names: list[str]) -> dict[str, str]:
    out = h.check_output(f"systemctl show {shlex.quote(unit)} -p {','.join(names)}")
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


def worker_instances(h: Any) -> list[str]:
    """Loaded instances of the worker template unit: ['shield-orchestrator-worker@1.service']."""
    out = h.check_output(f"systemctl list-units --all --plain --no-legend '{WORKER_UNIT}*.service'")
    return sorted(line.split()[0] for line in out.splitlines() if line.strip())


def wait_active(h: Any, unit: str, timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while h.run(f"systemctl is-active {shlex.quote(unit)}").stdout.strip() != "active":
        if time.monotonic() > deadline:
            fail_with_journal(h, unit, f"not active after {timeout_s:.0f} s")
        time.sleep(1)


# --- sockets --------------------------------------------------------------------------------
def listening_addresses(h: Any, port: int) -> set[str]:
    """Local addresses with a TCP listener on ``port`` ('0.0.0.0' / '::' mean every address)."""
    out = h.check_output(f"ss -Hltn 'sport = :{port}'")
    addrs = set()
    for line in out.splitlines():
        local = line.split()[3]  # State Recv-Q Send-Q Local:Port Peer:Port
        addr = local.rsplit(":", 1)[0].strip("[]").split("%", 1)[0]
        addrs.add("0.0.0.0" if addr == "*" else addr)
    return addrs


def own_addresses(h: Any) -> set[str]:
    """Every IPv4/IPv6 address configured on the host (loopback included)."""
    out = h.check_output("ip -o addr show")
    return {line.split()[3].split("/", 1)[0] for line in out.splitlines()}


# --- the deployed environment file ------------------------------------------------------------
def environment_file_path(h: Any, unit: str = API_UNIT) -> str:
    """The path of the unit's EnvironmentFile."""
    prop = unit_properties(h, unit, ["EnvironmentFiles"]).get("EnvironmentFiles", "")
    if not prop:
        fail_with_journal(h, unit, "has no EnvironmentFile")
    return str(prop.split()[0])


def environment_file(h: Any, unit: str = API_UNIT) -> dict[str, str]:
    """KEY=value pairs of the unit's EnvironmentFile (secrets: passwords, API keys)."""
    env: dict[str, str] = {}
    for line in h.file(environment_file_path(h, unit)).content_string.splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, value = line.split("=", 1)
            env[key.strip()] = value.strip().strip("'\"")
    return env


def api_key(env: dict[str, str]) -> str:
    keys = env.get("SHIELD_API_KEYS") or env.get("SHIELD_API_KEY") or ""
    key = keys.split(",")[0].strip()
    if not key:
        raise AssertionError(f"no SHIELD_API_KEYS in the API's EnvironmentFile: {sorted(env)}")
    return key


def redis_cli(h: Any, env: dict[str, str], *args: str, target: str = "127.0.0.1") -> str:
    """Run redis-cli on ``h`` against ``target`` as the app's ACL user, with the credentials of
    the app's EnvironmentFile ``env``; over TLS, verified against the deployment's CA, when ``h``
    is a Redis host serving TLS (it holds REDIS_CA then)."""
    return str(h.check_output(redis_cli_command(h, env, *args, target=target)))


def redis_cli_command(h: Any, env: dict[str, str], *args: str, target: str = "127.0.0.1") -> str:
    """The shell command for :func:`redis_cli`. The password is on no command line: it goes to a
    root-only file on ``h`` through podman exec's stdin, and the shell on ``h`` reads it into
    REDISCLI_AUTH."""
    cmd = " ".join(shlex.quote(a) for a in args)
    password = secret_file(h, "redis_password", env["SHIELD_REDIS_PASSWORD"])
    auth = f'REDISCLI_AUTH="$(cat {shlex.quote(password)})"'
    user = env.get("SHIELD_REDIS_USERNAME", "")
    as_user = f"--user {shlex.quote(user)} " if user else ""
    tls = f"--tls --cacert {shlex.quote(REDIS_CA)} " if h.file(REDIS_CA).exists else ""
    return (
        f"{auth} redis-cli --no-auth-warning --raw {tls}{as_user}-h {target} -p {REDIS_PORT} {cmd}"
    )


SECRETS_DIR = "/run/shield-molecule"  # on a test host: root-only, gone with the host


def secret_file(h: Any, name: str, value: str) -> str:
    """A file on ``h`` (mode 0600, root) holding ``value``, written through ``podman exec -i``'s
    stdin so that the value is on no command line; its path."""
    path = f"{SECRETS_DIR}/{name}"
    write = f"umask 077 && mkdir -p {SECRETS_DIR} && cat > {path}"
    subprocess.run(
        ["podman", "exec", "-i", h.backend.name, "/bin/sh", "-c", write],
        input=value.encode(),
        check=True,
        timeout=60,
    )
    return path


def sql_name(value: str) -> str:
    """``value`` for an SQL literal, refused unless it is a job id or workspace name (no quote)."""
    assert re.fullmatch(r"[A-Za-z0-9_-]{1,64}", value), f"not an id or name: {value!r}"
    return value


def sql(h: Any, query: str, database: str = "shield_orchestrator") -> str:
    """One query's result (psql -tA) as the postgres superuser, on the PostgreSQL host ``h``."""
    out = h.run(f"runuser -u postgres -- psql -d {shlex.quote(database)} -tA -c %s", query)
    assert out.rc == 0, out.stderr
    return str(out.stdout).strip()


# --- HTTP from inside the API host (python3 is in the image; no curl needed) ---------------------
_HTTP = r"""
import hashlib, json, ssl, sys, urllib.request, urllib.error
method, url, env_path, key_sha256, body, ca = sys.argv[1:7]
headers = {"Content-Type": "application/json"}
if key_sha256:  # the key itself never crosses argv: it is read here from the EnvironmentFile
    keys = []
    with open(env_path) as env:
        for line in env:
            name, _, value = line.strip().partition("=")
            if name == "SHIELD_API_KEYS":
                keys = [k.strip() for k in value.strip("'\"").split(",")]
    key = next(k for k in keys if hashlib.sha256(k.encode()).hexdigest() == key_sha256)
    headers.update({"X-API-Key": key, "Authorization": "Bearer " + key})
data = body.encode() if body else None
req = urllib.request.Request(url, method=method, data=data, headers=headers)
context = ssl.create_default_context(cafile=ca) if ca else None  # chain and host name verified
try:
    with urllib.request.urlopen(req, timeout=30, context=context) as r:
        print(json.dumps({"status": r.status, "body": r.read().decode()}))
except urllib.error.HTTPError as e:
    print(json.dumps({"status": e.code, "body": e.read().decode()}))
"""


def api_tls(h: Any) -> bool:
    """Whether the API on ``h`` serves HTTPS (TLS on: its certificate is installed)."""
    return bool(h.file(API_CERT).exists)


def api_base(h: Any) -> str:
    """The API's base URL on the API host itself: https with TLS on, else http."""
    return f"{'https' if api_tls(h) else 'http'}://127.0.0.1:{API_PORT}"


def http(h: Any, method: str, path: str, key: str, body: Any = None) -> tuple[int, Any]:
    """(status, parsed JSON body) of an API request made on the API host itself (over HTTPS,
    verified with the deployment's CA, when TLS is on). ``key`` is one of the API's keys (or ""
    for none): the request's program finds it in the API's EnvironmentFile by its SHA-256, so
    no key appears on a command line of this machine or of the host."""
    payload = "" if body is None else json.dumps(body)
    url, ca = api_base(h) + path, APP_CA if api_tls(h) else ""
    key_sha256 = hashlib.sha256(key.encode()).hexdigest() if key else ""
    args = (_HTTP, method, url, environment_file_path(h), key_sha256, payload, ca)
    out = h.check_output("python3 -c " + " ".join(shlex.quote(a) for a in args))
    answer = json.loads(out)
    try:
        parsed = json.loads(answer["body"])
    except ValueError:
        parsed = answer["body"]
    return int(answer["status"]), parsed


def ingest_and_wait(
    h: Any, key: str, chunks: int, timeout_s: float = 180, workspace: str | None = None
) -> dict[str, Any]:
    """Submit ``chunks`` chunks through the API and poll the job until it completes."""
    body = {
        "source_type": "text",
        "chunks": [
            {
                "text": f"Chunk {i} of the molecule check: Redis streams feed LightRAG workers.",
                "source_uri": f"molecule://verify/{time.time_ns()}/{i}",
            }
            for i in range(chunks)
        ],
    }
    if workspace is not None:
        body["workspace"] = workspace
    status, answer = http(h, "POST", "/lightrag/ingest-async", key, body)
    if status != 202:
        fail_with_journal(h, API_UNIT, f"POST /lightrag/ingest-async answered {status}: {answer}")
    job_id = answer["job_id"]
    deadline = time.monotonic() + timeout_s
    job: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, job = http(h, "GET", f"/jobs/{job_id}", key)
        if status == 200 and job.get("status") in ("completed", "completed_with_errors", "failed"):
            break
        time.sleep(1)
    if job.get("status") != "completed":
        problem = f"job {job_id} did not complete in {timeout_s:.0f} s: {job}"
        fail_with_journal(h, f"{WORKER_UNIT}1", problem)
    return job


# --- repositories indexed by the indexers (issue 17) -------------------------------------------
SERVICE_USER = "shield"  # orchestrator_user: the indexers run as it, and read the test repos as it
REPO_TERMINAL = ("indexed", "completed_with_errors", "failed")


def as_service_user(h: Any, *argv: str) -> str:
    """``argv`` run on ``h`` as the service user (git refuses a repository another user owns)."""
    return str(h.check_output(shlex.join(["runuser", "-u", SERVICE_USER, "--", *argv])))


def git_repo(hosts: list[Any], path: str, files: dict[str, str]) -> str:
    """A git repository at ``path`` on each of ``hosts`` (the same commits on every host: the
    indexers of any host clone it as a local path), holding ``files`` in one commit on branch
    ``main``, owned by the service user; its commit."""
    first = hosts[0]
    first.check_output(f"install -d -o {SERVICE_USER} -g {SERVICE_USER} {shlex.quote(path)}")
    as_service_user(first, "git", "-C", path, "init", "-q", "-b", "main")
    write_files(first, path, files)
    commit = git_commit(first, path, "fixture: first commit")
    for other in hosts[1:]:
        copy_repo(first, other, path)
    return commit


def write_files(h: Any, path: str, files: dict[str, str]) -> None:
    """Write ``files`` (relative path -> text) under ``path`` on ``h`` as the service user."""
    for name, text in files.items():
        target = f"{path}/{name}"
        subprocess.run(
            ["podman", "exec", "-i", "-u", SERVICE_USER, h.backend.name, "/bin/sh", "-c",
             f"mkdir -p \"$(dirname {shlex.quote(target)})\" && cat > {shlex.quote(target)}"],
            input=text.encode(), check=True, timeout=60,
        )  # fmt: skip


def git_commit(h: Any, path: str, message: str) -> str:
    """Commit everything under ``path`` (additions, changes, deletions) as the service user."""
    as_service_user(h, "git", "-C", path, "add", "-A")
    ident = ["-c", "user.name=molecule", "-c", "user.email=molecule@localhost"]
    as_service_user(h, "git", "-C", path, *ident, "commit", "-q", "-m", message)
    return as_service_user(h, "git", "-C", path, "rev-parse", "HEAD").strip()


def copy_repo(source: Any, target: Any, path: str) -> None:
    """``path`` of ``source`` (a repository owned by the service user) onto ``target``, same
    commits, through this machine (podman exec, a tar stream)."""
    pack = subprocess.run(
        ["podman", "exec", source.backend.name, "tar", "-C", path, "-cf", "-", "."],
        capture_output=True, check=True, timeout=120,
    ).stdout  # fmt: skip
    target.check_output(f"rm -rf {shlex.quote(path)}")
    target.check_output(f"install -d -o {SERVICE_USER} -g {SERVICE_USER} {shlex.quote(path)}")
    subprocess.run(
        ["podman", "exec", "-i", "-u", SERVICE_USER, target.backend.name,
         "tar", "-C", path, "-xf", "-"],
        input=pack, check=True, timeout=120,
    )  # fmt: skip


def wait_indexed(
    h: Any, key: str, repo_id: str, commit: str, timeout_s: float = 300
) -> dict[str, Any]:
    """GET /repos/{repo_id} once the repository is indexed at ``commit`` and no run is in
    progress; fails with the indexers' journal when a run at ``commit`` ends otherwise, or
    when nothing happens within ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    repo: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, repo = http(h, "GET", f"/repos/{repo_id}", key)
        assert status == 200, repo
        state, last = repo["index"], repo["index"].get("last_run") or {}
        if state["state"] != "running" and state["indexed_commit"] == commit:
            return repo
        if last.get("commit") == commit and state["state"] in ("completed_with_errors", "failed"):
            break
        time.sleep(1)
    problem = f"repository {repo_id} not indexed at {commit} within {timeout_s:.0f} s: {repo}"
    fail_with_journal(h, "shield-orchestrator-indexer@1", problem)
    return repo


def repo_documents(data: Any, repo_id: str) -> dict[str, tuple[str, frozenset[str]]]:
    """path -> (the job that ingested it, the LightRAG documents of that job, processed) of
    every file in the repository's manifest (branch main), read on the PostgreSQL host."""
    rows = sql(
        data,
        "SELECT m.path, m.job_id, coalesce(string_agg(d.id, ' '), '')"  # noqa: S608
        " FROM repo_files m LEFT JOIN lightrag_doc_status d"
        "   ON d.id LIKE 'shield-' || m.job_id || '-%' AND d.status = 'processed'"
        f" WHERE m.repo = '{sql_name(repo_id)}' AND m.branch = 'main'"
        " GROUP BY m.path, m.job_id",
    )
    docs: dict[str, tuple[str, frozenset[str]]] = {}
    for line in rows.splitlines():
        path, job_id, ids = line.split("|")
        docs[path] = (job_id, frozenset(ids.split()))
    return docs


def job_documents(data: Any, job_id: str) -> frozenset[str]:
    """The LightRAG documents (any status) of one ingestion job."""
    out = sql(
        data,
        "SELECT id FROM lightrag_doc_status"  # noqa: S608
        f" WHERE id LIKE 'shield-{sql_name(job_id)}-%'",
    )
    return frozenset(out.split())


def playbook(name: str, *args: str) -> str:
    """``ansible-playbook playbooks/NAME ARGS`` against this scenario, as operators run it (from
    the controller, molecule's inventory; the verifier's environment carries ANSIBLE_CONFIG);
    its output. Fails with the output's tail when the play fails."""
    project = Path(os.environ["MOLECULE_PROJECT_DIRECTORY"])
    program = Path(sys.executable).with_name("ansible-playbook")
    inventory = os.environ["MOLECULE_INVENTORY_FILE"]
    cmd = [str(program), str(project / "playbooks" / name), "-i", inventory, *args]
    run = subprocess.run(cmd, cwd=project, capture_output=True, text=True, timeout=900, check=False)
    assert run.returncode == 0, f"{' '.join(cmd)} failed ({run.returncode}):\n{run.stdout[-6000:]}"
    return run.stdout
