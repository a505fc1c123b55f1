"""worker1 + worker2: pools up and hardened; one job's chunks processed on both hosts;
the data host answers them only with credentials."""

from __future__ import annotations

import pytest
import tests_common as tc

testinfra_hosts = tc.hosts_in("orchestrator_workers")

# Probes run on the worker host with its system python3 (no client tools needed there):
# Redis must answer an unauthenticated PING with NOAUTH, PostgreSQL must ask for a password
# (or reject the connection) instead of letting a password-less startup message in.
_REDIS_PROBE = r"""
import socket, ssl, sys
host, port, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3]
s = socket.create_connection((host, port), timeout=5)
try:
    if ca != "-":  # TLS verified against the deployment's CA and the name dialled
        s = ssl.create_default_context(cafile=ca).wrap_socket(s, server_hostname=host)
    s.sendall(b"PING\r\n")
    print(s.recv(200).decode().strip() or "closed")
except OSError:  # reset by a TLS-only server, or a failed handshake
    print("closed")
"""
_PG_PROBE = r"""
import socket, struct, sys
host, port, user, db = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
s = socket.create_connection((host, port), timeout=5)
params = b"user\0" + user.encode() + b"\0database\0" + db.encode() + b"\0\0"
s.sendall(struct.pack("!ii", 8 + len(params), 196608) + params)
kind = s.recv(1)
rest = s.recv(4096)
if kind == b"R":
    code = struct.unpack("!i", rest[4:8])[0]
    print({0: "trust", 3: "password", 5: "md5", 10: "scram"}.get(code, f"auth-{code}"))
else:
    print("rejected")
"""


def _data_host() -> str:
    return tc.hosts_in("redis")[0]


def test_worker_units_active_enabled_hardened(host):
    workers = tc.worker_instances(host)
    assert workers, f"no {tc.WORKER_UNIT}N.service instance on this host"
    for unit in workers:
        tc.assert_active_enabled(host, unit)
        props = tc.unit_properties(host, unit, list(tc.HARDENING))
        assert all(props.get(k) == v for k, v in tc.HARDENING.items()), f"{unit}: {props}"


def test_redis_needs_credentials(host):
    data = _data_host()
    tls = host.file(tc.APP_CA).exists  # the cluster spans several hosts: TLS between them

    def probe(ca: str) -> str:
        return host.check_output("python3 -c %s %s %s %s", _REDIS_PROBE, data,
                                 str(tc.REDIS_PORT), ca)  # fmt: skip

    reply = probe(tc.APP_CA if tls else "-")
    assert reply.startswith("-NOAUTH"), f"redis on {data} answered {reply!r} without a password"
    if tls:
        assert probe("-") == "closed", f"redis on {data} answered plaintext"


@pytest.mark.parametrize("user", ["shield_orchestrator", "postgres"])
def test_postgresql_needs_credentials(host, user):
    port, db = str(tc.POSTGRES_PORT), "shield_orchestrator"
    verdict = host.check_output(
        "python3 -c %s %s %s %s %s", _PG_PROBE, _data_host(), port, user, db
    )
    assert verdict != "trust", f"postgresql on {_data_host()} let {user} in without a password"
