"""data1: Redis and PostgreSQL up, reachable on the network only with credentials."""

from __future__ import annotations

import tests_common as tc

testinfra_hosts = tc.hosts_in("redis", "postgresql")


def test_data_units_active_and_enabled(host):
    for unit in tc.DATA_UNITS.values():
        tc.assert_active_enabled(host, unit)


def test_data_sockets_not_on_every_address(host):
    allowed = tc.own_addresses(host)
    for name, port in (("redis", tc.REDIS_PORT), ("postgresql", tc.POSTGRES_PORT)):
        addrs = tc.listening_addresses(host, port)
        where = sorted(addrs)
        assert addrs - tc.LOOPBACK, f"{name} listens on {where}: the worker hosts cannot reach it"
        assert addrs <= allowed, (
            f"{name} listens on {where}; want only this host's {sorted(allowed)}"
        )
