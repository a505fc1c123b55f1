#!/usr/bin/python
# Copyright: shield-orchestrator maintainers
# MIT License (see the collection's README)
"""Report, create or remove a Redis stream consumer group (RESP over a socket, no library)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: redis_stream_group
short_description: Report, create or remove a consumer group of a Redis stream
version_added: 0.1.0
description:
  - Reads C(XINFO GROUPS) and C(XINFO CONSUMERS) of a stream and returns the group with its
    consumers (name, pending entries, idle time).
  - With I(state=present) creates the group (C(XGROUP CREATE ... MKSTREAM)) when it is missing;
    with I(state=absent) destroys it. In check mode nothing is changed and C(changed) says
    whether a change would be made, so the module doubles as a read-only probe.
  - Speaks the Redis protocol (RESP2) over a TCP socket itself, so the managed host needs no
    Redis client library (redis-py is not required).
options:
  host:
    description: Redis host name or address.
    type: str
    default: 127.0.0.1
  port:
    description: Redis TCP port.
    type: int
    default: 6379
  db:
    description: Logical database (C(SELECT)).
    type: int
    default: 0
  username:
    description: ACL user name; empty means the default user (C(requirepass)).
    type: str
    default: ""
  password:
    description: Password; empty means no C(AUTH).
    type: str
    default: ""
  stream:
    description: Stream key.
    type: str
    required: true
  group:
    description: Consumer group name.
    type: str
    required: true
  state:
    description:
      - C(present) creates the group when missing, C(absent) destroys it.
      - Use C(present) in check mode to only report.
    type: str
    choices: [present, absent]
    default: present
  start_id:
    description:
      - ID the group starts from when it is created.
      - C(0) reads the stream's backlog, C($) only new entries.
    type: str
    default: "0"
  timeout:
    description: Socket timeout in seconds.
    type: float
    default: 5.0
  tls:
    description:
      - Speak TLS (a Redis with C(tls-port)); the server's certificate must chain to I(ca_file)
        and name I(host), else the module fails (never falls back to plaintext).
    type: bool
    default: false
  ca_file:
    description: CA certificate (PEM) the server's certificate is verified against when I(tls).
    type: path
    default: ""
author:
  - shield-orchestrator maintainers
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Make sure the workers' group exists
  shield.orchestrator.redis_stream_group:
    host: 127.0.0.1
    password: "{{ redis_password }}"
    stream: "shield:ingestion_queue"
    group: lightrag-workers

- name: Read the group and its consumers without changing anything
  shield.orchestrator.redis_stream_group:
    password: "{{ redis_password }}"
    stream: "shield:ingestion_queue"
    group: lightrag-workers
  check_mode: true
  register: group
  no_log: true

- name: Every worker process is a consumer
  ansible.builtin.assert:
    that: group.consumers | map(attribute='name') | select('match', 'host1:') | list | length == 2
"""

RETURN = r"""
exists:
  description: Whether the group exists after the module ran (in check mode, before).
  returned: always
  type: bool
stream_exists:
  description: Whether the stream key exists and is a stream.
  returned: always
  type: bool
stream_length:
  description: Entries in the stream (C(XLEN)).
  returned: always
  type: int
group_info:
  description: >-
    The group's C(XINFO GROUPS) fields (name, consumers, pending, last-delivered-id, ...).
  returned: when the group exists
  type: dict
consumers:
  description: The group's consumers, each with name, pending and idle (ms).
  returned: always
  type: list
  elements: dict
"""

import socket
import ssl

from ansible.module_utils.basic import AnsibleModule


class RespError(Exception):
    """An error reply (-ERR ...) from the server."""


class RespClient:
    """The smallest RESP2 client: one connection, one command at a time."""

    def __init__(self, host, port, timeout, ca_file=None):
        self._sock = socket.create_connection((host, port), timeout=timeout)
        if ca_file is not None:  # TLS: verify the chain and the host name (redis-py's checks)
            context = ssl.create_default_context(cafile=ca_file)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            self._sock = context.wrap_socket(self._sock, server_hostname=host)
        self._buf = b""

    def close(self):
        self._sock.close()

    def call(self, *args):
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            data = arg if isinstance(arg, bytes) else str(arg).encode("utf-8")
            out.append(b"$%d\r\n%s\r\n" % (len(data), data))
        self._sock.sendall(b"".join(out))
        reply = self._read()
        if isinstance(reply, RespError):
            raise reply
        return reply

    def _fill(self):
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("connection closed by the server")
        self._buf += chunk

    def _line(self):
        while b"\r\n" not in self._buf:
            self._fill()
        line, self._buf = self._buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self._buf) < n + 2:
            self._fill()
        data, self._buf = self._buf[:n], self._buf[n + 2 :]
        return data

    def _read(self):
        line = self._line()
        kind, rest = line[:1], line[1:]
        if kind == b"+":
            return rest.decode("utf-8", "replace")
        if kind == b"-":
            return RespError(rest.decode("utf-8", "replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n).decode("utf-8", "replace")
        if kind == b"*":
            n = int(rest)
            return None if n < 0 else [self._read() for _ in range(n)]
        raise ConnectionError("unexpected reply from the server: %r" % line[:40])


def pairs(flat):
    """A flat [k1, v1, k2, v2, ...] reply as a dict."""
    return {flat[i]: flat[i + 1] for i in range(0, len(flat) - 1, 2)}


def connect(params):
    tls = params.get("tls", False)
    ca_file = (params.get("ca_file") or None) if tls else None
    if tls and not ca_file:
        raise ValueError("tls needs ca_file (the CA that signed the server's certificate)")
    client = RespClient(params["host"], params["port"], params["timeout"], ca_file)
    try:
        if params["password"]:
            if params["username"]:
                client.call("AUTH", params["username"], params["password"])
            else:
                client.call("AUTH", params["password"])
        if params["db"]:
            client.call("SELECT", params["db"])
    except Exception:
        client.close()
        raise
    return client


def read_state(client, stream, group):
    """(stream_exists, stream_length, group_info or None, consumers)."""
    kind = client.call("TYPE", stream)
    if kind == "none":
        return False, 0, None, []
    if kind != "stream":
        raise RespError("WRONGTYPE key %r is a %s, not a stream" % (stream, kind))
    length = client.call("XLEN", stream)
    groups = [pairs(g) for g in client.call("XINFO", "GROUPS", stream)]
    info = next((g for g in groups if g.get("name") == group), None)
    consumers = []
    if info is not None:
        for raw in client.call("XINFO", "CONSUMERS", stream, group):
            c = pairs(raw)
            consumers.append(
                {
                    "name": c.get("name"),
                    "pending": int(c.get("pending") or 0),
                    "idle": int(c.get("idle") or 0),
                    "inactive": int(c["inactive"]) if c.get("inactive") is not None else None,
                }
            )
    return True, int(length), info, consumers


def run(params, check_mode):
    """The module's work, callable without Ansible (the collection's tests use it)."""
    client = connect(params)
    try:
        stream_exists, length, info, consumers = read_state(
            client, params["stream"], params["group"]
        )
        changed = False
        if params["state"] == "present" and info is None:
            changed = True
            if not check_mode:
                try:
                    client.call(
                        "XGROUP",
                        "CREATE",
                        params["stream"],
                        params["group"],
                        params["start_id"],
                        "MKSTREAM",
                    )
                except RespError as exc:
                    if "BUSYGROUP" not in str(exc):  # created meanwhile by a worker: fine
                        raise
                stream_exists, length, info, consumers = read_state(
                    client, params["stream"], params["group"]
                )
        elif params["state"] == "absent" and info is not None:
            changed = True
            if not check_mode:
                client.call("XGROUP", "DESTROY", params["stream"], params["group"])
                stream_exists, length, info, consumers = read_state(
                    client, params["stream"], params["group"]
                )
    finally:
        client.close()
    result = {
        "changed": changed,
        "exists": info is not None,
        "stream_exists": stream_exists,
        "stream_length": length,
        "consumers": consumers,
    }
    if info is not None:
        result["group_info"] = info
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            host=dict(type="str", default="127.0.0.1"),
            port=dict(type="int", default=6379),
            db=dict(type="int", default=0),
            username=dict(type="str", default=""),
            password=dict(type="str", default="", no_log=True),
            stream=dict(type="str", required=True),
            group=dict(type="str", required=True),
            state=dict(type="str", default="present", choices=["present", "absent"]),
            start_id=dict(type="str", default="0"),
            timeout=dict(type="float", default=5.0),
            tls=dict(type="bool", default=False),
            ca_file=dict(type="path", default=""),
        ),
        supports_check_mode=True,
    )
    try:
        result = run(module.params, module.check_mode)
    except RespError as exc:
        module.fail_json(
            msg="Redis refused: %s (stream %r, group %r)"
            % (exc, module.params["stream"], module.params["group"])
        )
    except (OSError, ConnectionError) as exc:
        module.fail_json(
            msg="Cannot reach Redis at %s:%s: %s. Check that redis-server runs and listens there "
            "(redis role: redis_bind_addresses) and that this host may connect; with TLS, that its "
            "certificate chains to ca_file and names the host (roles/redis: redis_tls_*)."
            % (module.params["host"], module.params["port"], exc)
        )
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
