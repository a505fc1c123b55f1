"""Temporal's development server off the loopback (data1, reached by the worker hosts).

Its internal services are dialled at 127.0.0.1 whatever ``--ip`` says (temporal CLI 1.9.1), so
off the loopback the role runs it with ``--ip 0.0.0.0`` (roles/temporal/vars/main.yml): here it
listens on every address, and its IP firewall lets in only the loopback, the address the clients
dial and the private networks (temporal_allowed_networks' default), nothing else.
"""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import tests_common as tc

testinfra_hosts = tc.hosts_in("temporal")

UNIT = "shield-temporal.service"
FRONTEND = 7233
DENY_ANY = {"0.0.0.0/0", "::/0"}  # systemctl show's spelling of IPAddressDeny=any
PRIVATE = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7"}


def test_listens_on_every_address_behind_its_ip_firewall(host):
    props = tc.unit_properties(host, UNIT, ["ExecStart", "IPAddressDeny", "IPAddressAllow"])
    assert "--ip 0.0.0.0 " in props["ExecStart"], props["ExecStart"]
    assert tc.listening_addresses(host, FRONTEND) == {"0.0.0.0"}
    assert set(props["IPAddressDeny"].split()) == DENY_ANY, props
    allowed = set(props["IPAddressAllow"].split())
    # systemd folds an address into a prefix that holds it: data1's own address is in 10.0.0.0/8
    assert allowed <= {"127.0.0.0/8", "::1/128"} | PRIVATE | {f"{a}/32" for a in mine(host)}
    assert {"127.0.0.0/8", "::1/128"} | PRIVATE <= allowed, allowed
    dialled = [a for a in mine(host) if any(ip_address(a) in ip_network(n) for n in allowed)]
    assert dialled, f"none of data1's addresses {mine(host)} is allowed: {allowed}"


def mine(host) -> set[str]:
    """data1's own addresses other than the loopback (the one its clients dial among them)."""
    return {a for a in tc.own_addresses(host) - tc.LOOPBACK if not a.startswith("fe80:")}
