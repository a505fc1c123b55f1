"""Process helpers for benchmarks: start in a new session, peak RSS of a tree, stop by PID.

Every process a benchmark starts gets its own session (process group = its PID), so stopping
it signals exactly that group and nothing else on the machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any


def start(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    log: Path | None = None,
    stdin_pipe: bool = False,
) -> subprocess.Popen[str]:
    full_env = {**os.environ, **(env or {})}
    out: Any = subprocess.PIPE if stdin_pipe else subprocess.DEVNULL
    err: Any = subprocess.DEVNULL
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        err = log.open("a")
        if not stdin_pipe:
            out = err
    proc = subprocess.Popen(
        list(argv),
        env=full_env,
        cwd=cwd,
        stdin=subprocess.PIPE if stdin_pipe else subprocess.DEVNULL,
        stdout=out,
        stderr=err,
        text=True,
        start_new_session=True,
    )
    if log is not None:
        err.close()  # the child keeps its own descriptor
    return proc


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout_s: float = 20) -> int:
    """Signal the process group we created for ``proc``; SIGKILL it after ``timeout_s``."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    # children that outlived their parent are still in the group: end them too
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    return int(proc.returncode)


def tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (from /proc/<pid>/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                todo.extend(int(c) for c in task.read_text().split())
    return out


def peak_rss_kib(pid: int) -> int:
    """VmHWM (peak resident set) of one process, KiB; 0 when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except OSError:
        return 0
    return 0


def tree_peak_rss_mib(pids: Sequence[int]) -> float:
    """Sum of the peak RSS of every process in the trees rooted at ``pids`` (MiB)."""
    return sum(peak_rss_kib(p) for root in pids for p in tree(root)) / 1024.0


def read_line(proc: subprocess.Popen[str], timeout_s: float) -> str:
    """One line of the child's stdout within ``timeout_s`` (RuntimeError otherwise)."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"no answer from pid {proc.pid} within {timeout_s}s")
        ready, _, _ = select.select([proc.stdout], [], [], min(left, 0.5))
        if ready:
            line = proc.stdout.readline()
            if not line:
                raise RuntimeError(f"pid {proc.pid} closed its stdout (exit {proc.poll()})")
            return line.strip()
        if proc.poll() is not None:
            raise RuntimeError(f"pid {proc.pid} exited with {proc.returncode}")


def has_line(proc: subprocess.Popen[str]) -> bool:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], 0)
    return bool(ready)


def send(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def read_json(proc: subprocess.Popen[str], timeout_s: float) -> dict[str, Any]:
    return dict(json.loads(read_line(proc, timeout_s)))


@contextlib.contextmanager
def running(procs: list[subprocess.Popen[str]]) -> Iterator[list[subprocess.Popen[str]]]:
    try:
        yield procs
    finally:
        for p in procs:
            stop(p)
