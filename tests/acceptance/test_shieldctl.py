"""scripts/shieldctl, the operator's CLI that `make sandbox` runs, against the real API and
worker processes over HTTP, with the key in a file (SHIELD_API_KEY_FILE, as on the machine).

What is proved: `submit --follow` chunks a folder, follows the jobs on their event streams to
the end and exits 0 with every chunk processed; `events` prints a job's whole story and
returns when the server ends the stream; `follow` of a finished job returns at once; `jobs`
prints the newest jobs as a table, a page at a time; `workspaces` shows who serves each
workspace; an
unknown job and a missing key file are one line and exit 2.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from shield_orchestrator import keys

from tests.support.api import API_KEY
from tests.support.procs import worker_processes

pytestmark = pytest.mark.acceptance

SHIELDCTL = Path(__file__).resolve().parents[2] / "scripts" / "shieldctl"


def shieldctl(
    base: str, tmp_path: Path, *args: str, **env: str
) -> subprocess.CompletedProcess[str]:
    key_file = tmp_path / "api_key"
    key_file.write_text(API_KEY + "\n")
    key_file.chmod(0o600)
    return subprocess.run(
        [sys.executable, str(SHIELDCTL), *args],
        env={"SHIELD_API_URL": base, "SHIELD_API_KEY_FILE": str(key_file), **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    docs = tmp_path / "corpus"
    docs.mkdir()
    for n in range(3):
        paragraphs = [f"Document {n} paragraph {p}: " + "word " * 40 for p in range(4)]
        (docs / f"doc{n}.md").write_text("\n\n".join(paragraphs))
    return docs


def test_submit_follows_the_event_streams_to_completion(
    api_proc: tuple[Any, str], env: dict[str, str], tmp_path: Path, corpus: Path
) -> None:
    _, base = api_proc
    with worker_processes(env, tmp_path) as spawn:
        spawn("1")
        # --batch 5: several jobs, one event stream each, one bar over all of them
        result = shieldctl(base, tmp_path, "submit", str(corpus), "--follow", "--batch", "5",
                           "--chunk-chars", "300")  # fmt: skip
        assert result.returncode == 0, result.stdout + result.stderr
        jobs = [line.split()[1].rstrip(":") for line in result.stdout.splitlines()
                if line.startswith("job ") and line.endswith("chunks queued")]  # fmt: skip
        assert len(jobs) >= 2, result.stdout
        total = int(result.stdout.split("submit: ")[1].split()[0])
        assert f"result: completed: {total}/{total} chunks processed, 0 failed" in result.stdout
        assert f"100.0%  {total}/{total} chunks" in result.stderr.splitlines()[-1]

        story = shieldctl(base, tmp_path, "events", jobs[0])
        assert story.returncode == 0, story.stderr
        names = [json.loads(line)["event"] for line in story.stdout.splitlines()]
        assert names[0] == "ingestion.queued"
        assert names[-1] == "ingestion.completed"

        again = shieldctl(base, tmp_path, "follow", *jobs)
        assert again.returncode == 0, again.stdout + again.stderr
        assert f"result: completed: {total}/{total} chunks processed" in again.stdout

        table = shieldctl(base, tmp_path, "jobs", "--limit", "2")
        assert table.returncode == 0, table.stderr
        header, *rows = table.stdout.splitlines()
        assert header.split()[:2] == ["JOB", "STATUS"]
        assert [r.split()[0] for r in rows] == [jobs[-1], jobs[-2]]  # newest first
        assert table.stderr.strip() == "2 job(s) (more: raise --limit)"

        spaces = shieldctl(base, tmp_path, "workspaces")
        assert spaces.returncode == 0, spaces.stderr
        header, *rows = spaces.stdout.splitlines()
        assert header.split()[:2] == ["WORKSPACE", "OWNED"]
        served = {r.split()[0]: r.split()[4:] for r in rows}
        # engine noop: the one worker process serves every declared workspace, nothing queued
        assert served == {ws: ["acceptance:1"] for ws in keys.WORKSPACES}, spaces.stdout
        assert all(r.split()[2:4] == ["0", "0"] for r in rows), spaces.stdout
        assert spaces.stderr == ""


def test_an_unknown_job_and_a_missing_key_file_are_one_line(
    api_proc: tuple[Any, str], tmp_path: Path
) -> None:
    _, base = api_proc
    unknown = shieldctl(base, tmp_path, "events", "0b5c3f0e-0000-4000-8000-000000000000")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().endswith("answered 404")
    assert len(unknown.stderr.strip().splitlines()) == 1

    missing = tmp_path / "nope"
    no_key = shieldctl(base, tmp_path, "health", SHIELD_API_KEY_FILE=str(missing))
    assert no_key.returncode == 2
    assert (
        no_key.stderr.strip()
        == f"shieldctl: SHIELD_API_KEY_FILE={missing}: No such file or directory"
    )
