"""Temporal's development server off the loopback (data1, reached by the worker hosts).

Its internal services are dialled at 127.0.0.1 whatever ``--ip`` says (temporal CLI 1.9.1), so
off the loopback the role runs it with ``--ip 0.0.0.0`` (roles/temporal/vars/main.yml): here it
listens on every address, and its IP firewall lets in only the loopback, the address the clients
dial and the private networks (temporal_allowed_networks' default), nothing else.
"""

from __future__ import annotations

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
    allowed = {a.removesuffix("/32") for a in props["IPAddressAllow"].split()}
    mine = (tc.own_addresses(host) - tc.LOOPBACK) & allowed  # the address the clients dial
    assert len(mine) == 1, f"none or several of the host's addresses allowed: {allowed}"
    assert allowed - mine == {"127.0.0.0/8", "::1/128"} | PRIVATE, allowed
