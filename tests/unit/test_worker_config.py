"""Worker settings: env overrides reach PoolConfig; bad values name the key and the value."""

from __future__ import annotations

import pytest
from shield_orchestrator.errors import ConfigError
from shield_orchestrator.services.heartbeat import RateMeter
from shield_orchestrator.settings import WORKER_OVERRIDABLE, load_settings
from shield_orchestrator.workers import worker_pool
from shield_orchestrator.workers.worker_pool import PoolConfig


@pytest.mark.parametrize("name", sorted(worker_pool.TUNABLE - {"metrics_port"}))
def test_each_field_defaults_to_its_rendered_constant(name: str) -> None:
    config = PoolConfig.from_settings(load_settings({}))
    assert getattr(config, name) == getattr(worker_pool, name.upper())


def test_metrics_port_adds_the_instance() -> None:
    base = worker_pool.METRICS_PORT
    config = PoolConfig.from_settings(load_settings({}))
    assert config.metrics_port == (base + 1 if base else 0)  # instance 1


@pytest.mark.parametrize("name", sorted(worker_pool.TUNABLE - {"metrics_port"}))
def test_each_field_has_its_environment_override(name: str) -> None:
    value = int(getattr(worker_pool, name.upper())) + 7  # another value than the default
    settings = load_settings({f"SHIELD_WORKER_{name.upper()}": str(value)})
    assert getattr(PoolConfig.from_settings(settings), name) == value


def test_the_environment_overrides_exactly_the_tunable_fields() -> None:
    """settings (a lower layer) cannot import the pool: its list is kept equal here."""
    engine_keys = {"noop_delay_ms", "noop_max_concurrency"}  # engines/factory.py reads them
    assert set(WORKER_OVERRIDABLE) == worker_pool.TUNABLE | engine_keys


def test_environment_overrides_and_instance() -> None:
    env = {
        "SHIELD_WORKER_POOL_SIZE": "9",
        "SHIELD_WORKER_RECLAIM_IDLE_MS": "250",
        "SHIELD_WORKER_INSTANCE": "3",
        "SHIELD_WORKER_METRICS_PORT": "20000",
    }
    settings = load_settings(env)
    config = PoolConfig.from_settings(settings)
    assert (config.pool_size, config.reclaim_idle_ms, config.metrics_port) == (9, 250, 20003)
    assert load_settings(env, instance="7").worker_instance == "7"  # argv wins


@pytest.mark.parametrize(("value", "problem"), [("ten", "Not a valid int"), ("-1", ">= 0")])
def test_bad_values_name_key_and_value(value: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=f"'SHIELD_WORKER_BATCH_SIZE' has value '{value}'"):
        load_settings({"SHIELD_WORKER_BATCH_SIZE": value})
    with pytest.raises(ConfigError, match=problem):
        load_settings({"SHIELD_WORKER_BATCH_SIZE": value})


def test_rate_is_measured_over_a_sliding_window() -> None:
    now = [1000.0]
    meter = RateMeter(window_s=10, clock=lambda: now[0])
    for _ in range(50):
        meter.add()
    now[0] += 5
    assert meter.rate() == 10.0  # 50 chunks over the 5 s the meter has run
    now[0] += 20
    assert meter.rate() == 0.0  # nothing in the last 10 s
    assert meter.total == 50
