"""Benchmark 1: queue overhead against peers (same machine, same Redis, same no-op task, same N).

Each contender runs as separate processes against one redis-server started here: its own
worker process(es), and a producer process that speaks bench/peers/_proto.py. Peers run in
their own bench venvs (bench/venvs.py); the ceiling (a bare XREADGROUP+XACK loop) and our
pool run in the project's venv. For each configuration:

    FLUSHALL; start the workers; enqueue a warm-up of W tasks and wait until all are done;
    t0; "enqueue N" -> the producer times its own enqueue; poll Redis until every task is done
    (the contender's own bookkeeping says so, three polls in a row); t_done;
    enqueue rate = N / producer seconds; end-to-end rate = N / (t_done - t0);
    peak RSS = sum of VmHWM over the worker process trees.

Each peer gets a few configurations (its fastest settings on 2 cores); every configuration runs
at the full N in every round (BENCH_ROUNDS, default 3, alternating order), so no single small
sample picks a configuration. Each end-to-end rate is divided by the ceiling (raw
XREADGROUP+XACK) of the SAME round; the table keeps each queue's best such ratio over its
configurations and rounds, and says the range over rounds. The detail notes list every run.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from redis import Redis

from bench import proc, result, venvs

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
PEERS = BENCH / "peers"
PROJECT_PY = str(REPO / ".venv" / "bin" / "python")
WARMUP = 200
POLL_S = 0.01
DONE_POLLS = 3  # the probe must say "done" this many polls in a row

Probe = Callable[[Redis, int], bool]


def stream_probe(stream: str, group: str) -> Probe:
    """Done when the group has read every entry and acknowledged it (XINFO GROUPS)."""

    def probe(r: Redis, total: int) -> bool:
        try:
            groups = r.xinfo_groups(stream)
        except Exception:
            return False
        for g in groups:
            if g["name"] == group:
                read = g.get("entries-read") or 0
                return int(g["pending"]) == 0 and int(read) >= total
        return False

    return probe


def empty_probe(*keys: str) -> Probe:
    """Done when each key (list, zset, hash or stream) is empty or gone."""

    def probe(r: Redis, total: int) -> bool:
        pipe = r.pipeline(transaction=False)
        for k in keys:
            pipe.type(k)
        types = pipe.execute()
        pipe = r.pipeline(transaction=False)
        for k, t in zip(keys, types, strict=True):
            length = {"list": pipe.llen, "zset": pipe.zcard, "hash": pipe.hlen, "stream": pipe.xlen}
            if t in length:
                length[t](k)
        return all(int(n) == 0 for n in pipe.execute())

    return probe


def ours_probe(r: Redis, total: int) -> bool:
    """Our pool XACKs and XDELs each entry after its progress is recorded: empty and no PEL."""
    from bench.ours import ingestion_stream_and_group

    stream, group = ingestion_stream_and_group()
    try:
        pending = r.xpending(stream, group)
    except Exception:  # no stream or no group yet (the workers create it when they start)
        return False
    return int(r.xlen(stream)) == 0 and int(pending["pending"]) == 0


@dataclass
class Config:
    peer: str
    label: str  # the settings, in words
    venv: str | None  # bench venv name; None = the project's venv
    workers: list[list[str]]  # argv of each worker process; "{py}"/"{bin}" are substituted
    producer: list[str]
    probe: Probe
    env: dict[str, str] = field(default_factory=dict)
    needs_postgres: bool = False


def peer_configs() -> list[Config]:
    def taskiq(w: int) -> Config:
        argv = ["{bin}/taskiq", "worker", "taskiq_peer:broker", "--workers", str(w),
                "--max-async-tasks", "500", "--log-level", "WARNING"]  # fmt: skip
        return Config(
            "taskiq", f"RedisStreamBroker, {w} worker proc, 500 async tasks, XREADGROUP 500",
            "taskiq", [argv], ["{py}", "taskiq_peer.py"],
            stream_probe("bench:taskiq", "bench"),
            {"BENCH_TASKIQ_BROKER": "stream", "BENCH_XREAD_COUNT": "500"},
        )  # fmt: skip

    def taskiq_list(w: int) -> Config:
        argv = ["{bin}/taskiq", "worker", "taskiq_peer:broker", "--workers", str(w),
                "--max-async-tasks", "500", "--log-level", "WARNING"]  # fmt: skip
        return Config(
            "taskiq-list", f"ListQueueBroker (no ack: done = list empty), {w} worker proc, "
            "500 async tasks", "taskiq", [argv], ["{py}", "taskiq_peer.py"],
            empty_probe("bench:taskiq"), {"BENCH_TASKIQ_BROKER": "list"},
        )  # fmt: skip

    def dramatiq(procs: int, threads: int) -> Config:
        argv = ["{bin}/dramatiq", "dramatiq_peer", "--processes", str(procs),
                "--threads", str(threads)]  # fmt: skip
        return Config(
            "dramatiq", f"RedisBroker, {procs} proc x {threads} threads, ack after the actor",
            "dramatiq", [argv], ["{py}", "dramatiq_peer.py"],
            empty_probe("dramatiq:bench", "dramatiq:bench.msgs"),
        )  # fmt: skip

    def saq(w: int) -> Config:
        return Config(
            "saq", f"{w} worker proc, concurrency 100", "saq",
            [["{py}", "-m", "saq", "saq_peer.settings", "--workers", str(w), "--quiet"]],
            ["{py}", "saq_peer.py"], empty_probe("saq:bench:incomplete"),
            {"BENCH_CONCURRENCY": "100"},
        )  # fmt: skip

    def arq(w: int) -> Config:
        return Config(
            "arq", f"{w} worker proc, max_jobs 200, poll_delay 5 ms, keep_result 0", "arq",
            [["{py}", "arq_peer.py", "worker"]] * w, ["{py}", "arq_peer.py"],
            empty_probe("arq:queue"), {"BENCH_MAX_JOBS": "200", "BENCH_POLL_DELAY_S": "0.005"},
        )  # fmt: skip

    def celery(pool: str, c: int, procs: int) -> Config:
        argv = ["{bin}/celery", "-A", "celery_peer", "worker", "--pool", pool, "-c", str(c),
                "-Q", "bench_celery", "-l", "WARNING", "--without-gossip", "--without-mingle",
                "--without-heartbeat", "-n", "w%i@bench"]  # fmt: skip
        workers = [[a.replace("%i", str(i)) for a in argv] for i in range(procs)]
        return Config(
            "celery", f"{procs} x {pool} -c {c}, prefetch 64, acks_late, results ignored",
            "celery", workers, ["{py}", "celery_peer.py"],
            empty_probe("bench_celery", "unacked"), {"BENCH_PREFETCH": "64"},
        )  # fmt: skip

    return [
        dramatiq(2, 8),
        taskiq(1), taskiq(2),
        taskiq_list(1), taskiq_list(2),
        saq(1), saq(2),
        arq(1), arq(2),
        celery("prefork", 2, 1), celery("solo", 1, 2),
    ]  # fmt: skip


def raw_config() -> Config:
    return Config(
        "raw XREADGROUP+XACK", "1 proc, 500 per XREADGROUP, XACK pipelined with the next read",
        None, [["{py}", "raw_peer.py", "worker"]], ["{py}", "raw_peer.py"],
        stream_probe("bench:raw", "bench"), {"BENCH_BATCH": "500"},
    )  # fmt: skip


@dataclass
class Outcome:
    config: Config
    n: int
    enqueue_rate: float = 0.0
    e2e_rate: float = 0.0
    peak_rss_mib: float = 0.0
    error: str = ""
    round_no: int = 0


def _python_for(cfg: Config) -> str:
    return PROJECT_PY if cfg.venv is None else str(venvs.ensure_venv(cfg.venv))


def _argv(argv: list[str], py: str) -> list[str]:
    return [a.replace("{py}", py).replace("{bin}", str(Path(py).parent)) for a in argv]


def _wait_done(
    r: Redis, cfg: Config, total: int, answered: Callable[[], bool], limit_s: float
) -> float:
    """Poll until the probe holds DONE_POLLS times in a row after the producer answered."""
    deadline = time.perf_counter() + limit_s
    streak, first = 0, 0.0
    while time.perf_counter() < deadline:
        now = time.perf_counter()
        if answered() and cfg.probe(r, total):
            if streak == 0:
                first = now
            streak += 1
            if streak >= DONE_POLLS:
                return first
        else:
            streak = 0
        time.sleep(POLL_S)
    raise RuntimeError(f"not done within {limit_s:.0f}s")


def run_config(cfg: Config, n: int, redis_url: str, env: dict[str, str], logdir: Path) -> Outcome:
    out = Outcome(cfg, n)
    py = _python_for(cfg)
    r = Redis.from_url(redis_url, decode_responses=True)
    r.flushall()
    full_env = {"BENCH_REDIS_URL": redis_url, "PYTHONPATH": str(PEERS), **env, **cfg.env}
    log = logdir / f"{cfg.peer.split()[0]}-{abs(hash(cfg.label)) % 10**6}.log"
    workers = [
        proc.start(_argv(a, py), env={**full_env, "SHIELD_WORKER_INSTANCE": str(i + 1)},
                   cwd=PEERS, log=log)
        for i, a in enumerate(cfg.workers)
    ]  # fmt: skip
    producer = proc.start(_argv(cfg.producer, py), env=full_env, cwd=PEERS, log=log,
                          stdin_pipe=True)  # fmt: skip
    try:
        with proc.running([*workers, producer]):
            if proc.read_line(producer, 60) != "READY":
                raise RuntimeError("producer did not say READY")
            proc.send(producer, f"enqueue {WARMUP}")
            proc.read_json(producer, 60)
            _wait_done(r, cfg, WARMUP, lambda: True, 60)
            answer: dict[str, Any] = {}

            def answered() -> bool:
                if not answer and proc.has_line(producer):
                    answer.update(proc.read_json(producer, 5))
                return bool(answer)

            t0 = time.perf_counter()
            proc.send(producer, f"enqueue {n}")
            t_done = _wait_done(r, cfg, WARMUP + n, answered, 60 + n / 100)
            out.e2e_rate = n / (t_done - t0)
            out.enqueue_rate = n / float(answer["seconds"])
            out.peak_rss_mib = proc.tree_peak_rss_mib([w.pid for w in workers])
            proc.send(producer, "quit")
            dead = [w.pid for w in workers if w.poll() is not None]
            if dead:
                raise RuntimeError(f"worker process(es) {dead} exited during the run")
    except Exception as exc:
        out.error = f"{type(exc).__name__}: {exc} (log: {log.name})"
    finally:
        r.close()
    return out


def _run_and_say(
    cfg: Config, n: int, url: str, env: dict[str, str], logdir: Path, round_no: int
) -> Outcome:
    o = run_config(cfg, n, url, env, logdir)
    o.round_no = round_no
    print(f"bench overhead (round {round_no + 1}, N={n}): {cfg.peer} [{cfg.label}]: "
          + (o.error or f"enqueue {o.enqueue_rate:.0f}/s e2e {o.e2e_rate:.0f}/s "
                        f"rss {o.peak_rss_mib:.0f} MiB"), flush=True)  # fmt: skip
    return o


GOAL_RATIO = 0.8  # our pool's end-to-end rate ÷ the ceiling of the same round
RAW = "raw XREADGROUP+XACK"
LIMITS = (
    "2 shared cores: producer, workers, Redis, PostgreSQL and the poller compete for CPU, so "
    "a second worker process gains little (more contention, no new core). The ceiling only "
    "reads and acknowledges; our pool keeps the full contract per chunk: an asyncio task with "
    "its own timeout, envelope parse and engine call per chunk, progress recorded in the job "
    "tracker, XACK+XDEL, the PostgreSQL write-behind, leases and heartbeats. A cProfile of one "
    "worker process (5,000 chunks, 2026-12-06) puts about half of its busy CPU in that "
    "per-chunk Python (the slot task, handler, processor input) and most of the rest in "
    "per-batch Redis round trips (read, ack, progress); the producer (JobRegistry, 100 chunks "
    "per job) enqueues several times faster than the pool completes, so it is not the bound. "
    "Per-task Redis round trips and Python work per task bound the peers."
)


def _ceilings(outcomes: list[Outcome]) -> dict[int, float]:
    """The raw loop's end-to-end rate per round (the ratios' denominator)."""
    return {o.round_no: o.e2e_rate for o in outcomes if not o.error and o.config.peer == RAW}


def _enq_ceilings(outcomes: list[Outcome]) -> dict[int, float]:
    return {o.round_no: o.enqueue_rate for o in outcomes if not o.error and o.config.peer == RAW}


def _ratio(o: Outcome, ceilings: dict[int, float]) -> float | None:
    """``o``'s end-to-end rate ÷ the ceiling of its own round (None: no ceiling that round)."""
    base = ceilings.get(o.round_no)
    return o.e2e_rate / base if base else None


def _best(outcomes: list[Outcome], ceilings: dict[int, float]) -> dict[str, Outcome]:
    """Each queue's best run: highest same-round ratio (highest rate when no ceiling)."""
    best: dict[str, Outcome] = {}
    for o in outcomes:
        if o.error:
            continue
        cur = best.get(o.config.peer)
        key = (_ratio(o, ceilings) or 0.0, o.e2e_rate)
        if cur is None or key > (_ratio(cur, ceilings) or 0.0, cur.e2e_rate):
            best[o.config.peer] = o
    return best


def _spread(peer: str, outcomes: list[Outcome], ceilings: dict[int, float]) -> str:
    """The range over rounds of a queue's best same-round ratio ("0.41–0.44", or "0.43")."""
    per_round: dict[int, float] = {}
    for o in outcomes:
        r = _ratio(o, ceilings) if not o.error and o.config.peer == peer else None
        if r is not None:
            per_round[o.round_no] = max(per_round.get(o.round_no, 0.0), r)
    if not per_round:
        return "–"
    lo, hi = min(per_round.values()), max(per_round.values())
    if f"{lo:.3g}" == f"{hi:.3g}":
        return f"{lo:.3g} ({len(per_round)} round{'s' if len(per_round) > 1 else ''})"
    return f"{lo:.3g}–{hi:.3g} ({len(per_round)} rounds)"


def build(outcomes: list[Outcome], n: int, rounds: int, seconds: float) -> result.Benchmark:
    ceilings, enq_ceilings = _ceilings(outcomes), _enq_ceilings(outcomes)
    best = _best(outcomes, ceilings)
    rows: list[list[result.Cell]] = []
    for o in sorted(best.values(), key=lambda o: (-(_ratio(o, ceilings) or 0.0), -o.e2e_rate)):
        ratio = _ratio(o, ceilings)
        enq_base = enq_ceilings.get(o.round_no)
        rows.append([
            o.config.peer, o.config.label, o.round_no + 1, float(round(o.enqueue_rate)),
            round(o.enqueue_rate / enq_base, 3) if enq_base else None,
            float(round(o.e2e_rate)), round(ratio, 3) if ratio is not None else None,
            _spread(o.config.peer, outcomes, ceilings), round(o.peak_rss_mib, 1),
        ])  # fmt: skip
    ours = [o for p, o in best.items() if p.startswith("our pool")]
    peers = [o for p, o in best.items() if not p.startswith(("our pool", "raw"))]
    notes = [
        f"N = {n} no-op tasks per configuration after a warm-up of {WARMUP}, every "
        f"configuration at N in each of {rounds} round(s) (alternating order); enqueue/s is "
        "timed by the producer process, end-to-end/s from the start of the enqueue to the "
        "moment Redis shows every task done (workers running during the enqueue).",
        "Each ratio divides by the raw XREADGROUP+XACK ceiling of the same round; a row is the "
        "queue's best same-round ratio over its configurations and rounds ('round' says which), "
        "'range' is that ratio's spread over the rounds.",
    ]
    ratio = met = None
    if ours:
        top = max(ours, key=lambda o: _ratio(o, ceilings) or 0.0)
        top_ratio = _ratio(top, ceilings)
        if top_ratio is not None:
            ratio = round(top_ratio, 3)
            met = top_ratio >= GOAL_RATIO
            notes.append(
                f"Goal: {top.config.peer} ÷ ceiling (same round) = {ratio} "
                f"({'met' if met else 'NOT met'}, goal >= {GOAL_RATIO})."
            )
        fastest = max(peers, key=lambda o: o.e2e_rate) if peers else None
        if fastest is not None:
            notes.append(
                f"For context: {top.config.peer} ÷ {fastest.config.peer} (fastest peer, best "
                f"rounds, end-to-end/s) = {top.e2e_rate / fastest.e2e_rate:.3g}."
            )
    else:
        notes.append("Our pool was not measured in this run (see the runs below for errors).")
    if not ceilings:
        notes.append("The ceiling was not measured in this run: no ratios, goal not judged.")
    notes.append("Every run (round, configuration, N):")
    notes += [
        f"round {o.round_no + 1}: {o.config.peer} [{o.config.label}] (N={o.n}): "
        + (o.error or f"enqueue {o.enqueue_rate:.0f}/s, end-to-end {o.e2e_rate:.0f}/s, "
                      f"peak RSS {o.peak_rss_mib:.1f} MiB")
        for o in outcomes
    ]  # fmt: skip
    return result.Benchmark(
        key="overhead",
        title="Overhead against the raw ceiling and peer queues (no-op task, same Redis, same N)",
        goal=f"our pool at >= {GOAL_RATIO} of the raw XREADGROUP+XACK ceiling (end-to-end, "
        "same round) with the full contract",
        columns=[
            "queue",
            "settings",
            "round",
            "enqueue/s",
            "enqueue ÷ ceiling",
            "end-to-end/s",
            "end-to-end ÷ ceiling",
            "range over rounds",
            "peak RSS MiB (workers)",
        ],
        rows=rows,
        goal_met=met,
        ratio=ratio,
        ratio_label="our pool ÷ raw ceiling (end-to-end, same round)",
        baseline="raw XREADGROUP+XACK loop (ceiling), same round of the same run",
        limits=LIMITS,
        notes=notes,
        seconds=round(seconds, 1),
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.bench_overhead")
    ap.add_argument("--n", type=int, default=int(os.environ.get("BENCH_N", "20000")))
    ap.add_argument(
        "--json",
        type=Path,
        default=Path(os.environ.get("BENCH_JSON") or BENCH / "results" / "overhead.json"),
    )
    ap.add_argument(
        "--rounds",
        type=int,
        default=int(os.environ.get("BENCH_ROUNDS", "3")),
        help="rounds, alternating order, every configuration at N in each; best round counts",
    )
    ap.add_argument(
        "--only",
        default=os.environ.get("BENCH_OVERHEAD_ONLY", ""),
        help="comma-separated queues (" + ",".join(SHORT_NAMES) + "); the ceiling (raw) is "
        "always measured, the ratios need it",
    )
    args = ap.parse_args(argv)
    from tests.support.servers import redis_server

    only = {s.strip() for s in args.only.split(",") if s.strip()}
    configs = [raw_config(), *peer_configs()]
    try:
        from bench import ours

        configs += ours.configs()
    except ImportError as exc:
        print(f"bench: our pool is not available: {exc}", file=sys.stderr)
    unknown = only - set(SHORT_NAMES)
    if unknown:
        ap.error(f"--only / BENCH_OVERHEAD_ONLY: unknown {sorted(unknown)}; known {SHORT_NAMES}")
    if only:
        configs = [c for c in configs if _short(c.peer) in only | {"raw"}]
    logdir = BENCH / "results" / "logs"
    started = time.perf_counter()
    outcomes: list[Outcome] = []
    with redis_server() as srv:
        url = f"redis://:{srv.password}@127.0.0.1:{srv.port}/0"
        with _postgres_if_needed(any(c.needs_postgres for c in configs)) as pg_env:
            extra = {
                **pg_env,
                "SHIELD_REDIS_HOST": "127.0.0.1",
                "SHIELD_REDIS_PORT": str(srv.port),
                "SHIELD_REDIS_PASSWORD": srv.password,
            }
            for round_no in range(args.rounds):
                order = configs if round_no % 2 == 0 else list(reversed(configs))
                for cfg in order:
                    outcomes.append(_run_and_say(cfg, args.n, url, extra, logdir, round_no))
    bench = build(outcomes, args.n, args.rounds, time.perf_counter() - started)
    result.write(args.json, [bench])
    return 0


SHORT_NAMES = ["raw", "dramatiq", "taskiq", "taskiq-list", "saq", "arq", "celery", "ours"]


def _short(peer: str) -> str:
    """The name --only uses (SHORT_NAMES)."""
    first = peer.split()[0].lower()
    return "ours" if first == "our" else first


def _postgres_if_needed(needed: bool) -> Any:
    """PostgreSQL for our pool's write-behind (a migrated database), only when needed."""
    import contextlib

    if not needed:
        return contextlib.nullcontext({})
    from bench.ours import postgres_env

    return postgres_env()


if __name__ == "__main__":
    sys.exit(main())
