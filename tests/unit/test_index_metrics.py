"""The indexing families of /metrics (services/index_metrics.py) as Prometheus reads them:
cumulative buckets with an inclusive ``le``, none before the first read, and the same text
whether the API runs one process or several (multiprocess mode renders them beside the summed
files, never from them)."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families


def snapshot() -> object:
    from shield_orchestrator.services.index_metrics import Durations, Snapshot

    hist = Durations()
    hist.per_bucket[0] = 2  # two runs of <= 1 s
    hist.per_bucket[3] = 1  # one in (15, 60]
    hist.sum_s = 40.5
    return Snapshot(runs={"completed": 3, "failed": 1}, files={("skipped", "binary"): 4},
                    documents_deleted=7, repos_quarantined=1, consecutive_failures_max=5,
                    durations={"completed": hist})  # fmt: skip


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for f in text_string_to_metric_families(text)
        if f.name.startswith("shield_index_")
        for s in f.samples
    }


def test_buckets_are_cumulative_and_end_with_inf() -> None:
    from shield_orchestrator.services.index_metrics import RUN_DURATION_BUCKETS_S, Durations

    hist = Durations()
    hist.per_bucket[1] = 1
    hist.per_bucket[-1] = 2  # above the last bound
    out = hist.cumulative()
    assert [le for le, _ in out] == [f"{b:g}" for b in RUN_DURATION_BUCKETS_S] + ["+Inf"]
    assert [n for _, n in out][:3] == [0, 1, 1]
    assert out[-2][1] == 1
    assert out[-1][1] == 3


def test_single_and_multiprocess_render_the_same_families(tmp_path: Path) -> None:
    from shield_orchestrator.api.telemetry import ApiMetrics

    single, multi = ApiMetrics(), ApiMetrics(str(tmp_path))
    assert samples(single.render().decode()) == {}  # before the first read: nothing
    for api in (single, multi):
        api.index.snapshot = snapshot()  # type: ignore[assignment]
    one, many = samples(single.render().decode()), samples(multi.render().decode())
    assert one == many
    assert one[("shield_index_runs_total", (("outcome", "completed"),))] == 3
    assert one[("shield_index_documents_deleted_total", ())] == 7
    assert one[("shield_index_repositories_quarantined", ())] == 1
    assert one[("shield_index_consecutive_failures_max", ())] == 5
    le = ("shield_index_run_duration_seconds_bucket", (("le", "15"), ("outcome", "completed")))
    assert one[le] == 2
    assert one[("shield_index_run_duration_seconds_count", (("outcome", "completed"),))] == 3
