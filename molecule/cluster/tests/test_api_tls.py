"""The API host (issue 20): with TLS on (the cluster spans hosts), the API answers only over
HTTPS, with a certificate that chains to the deployment's CA and names 127.0.0.1; plaintext,
an unverified chain and TLS older than 1.2 get no HTTP answer; its key is the service user's alone.

The probes run on the API host itself (the API binds the loopback) with python3's ssl module.
"""

from __future__ import annotations

import json
import shlex
from typing import Any

import tests_common as tc

testinfra_hosts = tc.hosts_in("orchestrator_api")

# One JSON object: what each kind of client got from the API's port.
_PROBE = r"""
import json, socket, ssl, sys
ca, port = sys.argv[1], int(sys.argv[2])
out = {}
def https(context):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        with context.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
            tls.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := tls.recv(65536):
                answer += chunk
            issuer = dict(x[0] for x in tls.getpeercert()["issuer"])
            return {"status": answer.split(b"\r\n", 1)[0].decode(), "version": tls.version(),
                    "issuer": issuer.get("commonName", "")}
def refused(context):
    try:
        return {"answered": https(context)}
    except (ssl.SSLError, OSError) as exc:
        return {"error": type(exc).__name__ + ": " + str(exc)}
out["verified"] = https(ssl.create_default_context(cafile=ca))
out["system_cas"] = refused(ssl.create_default_context())
old = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
old.load_verify_locations(ca)
old.set_ciphers("DEFAULT:@SECLEVEL=0")  # the client would speak TLS 1.1: only the server refuses
old.minimum_version = ssl.TLSVersion.TLSv1
old.maximum_version = ssl.TLSVersion.TLSv1_1
out["tls1_1"] = refused(old)
with socket.create_connection(("127.0.0.1", port), timeout=10) as plain:
    plain.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    answer = b""
    try:
        while chunk := plain.recv(65536):
            answer += chunk
    except OSError:
        pass
out["plaintext"] = answer[:200].decode("latin-1")
print(json.dumps(out))
"""


def _probe(host: Any) -> dict[str, Any]:
    args = (_PROBE, tc.APP_CA, str(tc.API_PORT))
    out = host.run("python3 -c " + " ".join(shlex.quote(a) for a in args))
    if out.rc != 0:
        tc.fail_with_journal(host, tc.API_UNIT, f"the TLS probe failed: {out.stderr}")
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def test_api_answers_over_https_verified_with_the_deployment_ca(host):
    assert tc.api_tls(host), f"{tc.API_CERT} is missing: the API does not serve HTTPS"
    probe = _probe(host)
    verified = probe["verified"]
    assert verified["status"] == "HTTP/1.1 200 OK", probe
    assert verified["version"] in ("TLSv1.2", "TLSv1.3"), probe
    assert verified["issuer"] == "shield-orchestrator CA", probe
    # the helpers every other check uses reach it the same way
    status, body = tc.http(host, "GET", "/health", "")
    assert (status, tc.api_base(host)) == (200, f"https://127.0.0.1:{tc.API_PORT}"), body


def test_api_refuses_plaintext_an_unknown_ca_and_old_tls(host):
    probe = _probe(host)
    assert not probe["plaintext"].startswith("HTTP/"), f"answered plaintext: {probe['plaintext']!r}"
    assert "CERTIFICATE_VERIFY_FAILED" in probe["system_cas"].get("error", ""), probe
    assert "error" in probe["tls1_1"], f"TLS 1.1 was served: {probe}"


def test_api_key_is_the_service_users_alone(host):
    key = host.file(tc.API_KEY_FILE)
    assert key.exists
    assert (key.user, key.group, key.mode) == ("shield", "shield", 0o600)
    assert host.file(tc.API_CERT).mode == 0o644
    assert host.run("runuser -u shield -- test -r %s", tc.API_KEY_FILE).rc == 0
    assert host.run("runuser -u nobody -- test -r %s", tc.API_KEY_FILE).rc != 0
