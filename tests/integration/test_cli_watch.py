"""``jobs wait``, ``jobs watch`` and ``jobs supervise``: the shared poller from the command
line. Subprocesses against the fake.
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from baseten_training_async.testing import FakeClock, FakeTrainingAPI, JobTimings

from .test_cli import TIMEOUT, _env, _finish, _project, _spawn, cli

TERMINAL = {
    "TRAINING_JOB_COMPLETED",
    "TRAINING_JOB_FAILED",
    "TRAINING_JOB_DEPLOY_FAILED",
    "TRAINING_JOB_STOPPED",
    "TRAINING_JOB_PREEMPTED",
}


@pytest.fixture
async def fake() -> AsyncIterator[FakeTrainingAPI]:
    # 10x speed: CREATED 1 s + DEPLOYING 2 s + RUNNING 10 s of fake time is 1.3 s of real time.
    async with FakeTrainingAPI(seed=7, clock=FakeClock.real(speed=10), timings=JobTimings()) as api:
        yield api


# --- jobs wait -----------------------------------------------------------------------------


async def test_wait_uses_the_adaptive_poller_not_a_10_second_interval(
    fake: FakeTrainingAPI,
) -> None:
    pid = await _project(fake)
    job = fake.add_job(pid, {"image": {"base_image": "x"}, "name": "quick"})
    started = time.monotonic()
    waited = await cli("--json", "jobs", "wait", pid, job.id, api=fake)
    elapsed = time.monotonic() - started
    print(f"jobs wait on a 1.3 s job (default --poll-interval): {elapsed:.2f} s")
    assert waited.code == 0, waited.stderr
    assert waited.json()["current_status"] == "TRAINING_JOB_COMPLETED"
    assert elapsed < 8.0


async def test_wait_prints_a_failed_jobs_log_tail_and_exits_1(fake: FakeTrainingAPI) -> None:
    pid = await _project(fake)
    # The fake's default outcome: jobs named "...fail..." fail.
    job = fake.add_job(pid, {"image": {"base_image": "x"}, "name": "will-fail"})
    human = await cli("jobs", "wait", pid, job.id, "--log-tail", "3", api=fake)
    assert human.code == 1
    assert "finished as FAILED" in human.stderr
    assert f"last 3 log lines of {job.id}:" in human.stderr
    tail = human.stderr.split(f"last 3 log lines of {job.id}:\n", 1)[1].splitlines()
    assert len(tail) >= 3
    as_json = await cli("--json", "jobs", "wait", pid, job.id, "--log-tail", "2", api=fake)
    assert as_json.code == 1
    document = as_json.json()
    assert document["current_status"] == "TRAINING_JOB_FAILED"
    assert len(document["log_tail"]) == 2


async def test_wait_max_pending_with_on_timeout_stop_stops_the_job(fake: FakeTrainingAPI) -> None:
    fake.capacity = 0  # nothing leaves PENDING
    pid = await _project(fake)
    job = fake.add_job(pid, {"image": {"base_image": "x"}, "name": "stuck"})
    stopped = await cli(
        "--json",
        "jobs",
        "wait",
        pid,
        job.id,
        "--max-pending",
        "0.5",
        "--on-timeout",
        "stop",
        api=fake,
    )
    assert stopped.code == 1
    assert stopped.json()["stopped_for"] == "max_pending"
    assert stopped.json()["current_status"] == "TRAINING_JOB_STOPPED"
    assert "--max-pending passed" in stopped.stderr

    other = fake.add_job(pid, {"image": {"base_image": "x"}, "name": "stuck-2"})
    raised = await cli("jobs", "wait", pid, other.id, "--max-pending", "0.5", api=fake)
    assert raised.code == 1
    assert "error:" in raised.stderr
    bad = await cli("jobs", "wait", pid, other.id, "--on-timeout", "ignore", api=fake)
    assert bad.code == 2


# --- jobs watch ----------------------------------------------------------------------------


def _check_transitions(events: list[dict[str, Any]]) -> dict[str, list[str]]:
    """Each job's statuses in order; every change reported once, each from the last one."""
    seen: dict[str, list[str]] = {}
    for event in events:
        assert event["event"] == "status"
        assert event["job"]["id"] == event["job_id"]
        statuses = seen.setdefault(event["job_id"], [])
        assert event["previous"] == (statuses[-1] if statuses else None), event
        assert event["status"] != event["previous"]
        statuses.append(event["status"])
    for statuses in seen.values():
        assert len(statuses) == len(set(statuses)), statuses
    return seen


async def test_watch_json_lines_stream_each_transition_once(fake: FakeTrainingAPI) -> None:
    pid = await _project(fake)
    natural = fake.add_job(pid, {"image": {"base_image": "x"}, "name": "natural"})
    held = fake.add_job(pid, {"image": {"base_image": "x"}, "name": "held"})
    fake.force_status(held.id, "TRAINING_JOB_RUNNING")  # until the test releases it
    proc = await _spawn("--json", "jobs", "watch", pid, natural.id, held.id, env=_env(fake))
    assert proc.stdout is not None
    first = json.loads(await asyncio.wait_for(proc.stdout.readline(), TIMEOUT))
    # The stream cannot have ended: a watched job is pinned RUNNING.
    assert proc.returncode is None
    assert first["job_id"] in {natural.id, held.id}
    assert first["previous"] is None
    lines = [first]
    while True:  # until the natural job has finished; bounded by TIMEOUT
        line = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        assert line, "the watch ended while a job was still running"
        lines.append(json.loads(line))
        if lines[-1]["job_id"] == natural.id and lines[-1]["status"] in TERMINAL:
            break
    assert proc.returncode is None
    fake.force_status(held.id, "TRAINING_JOB_COMPLETED")
    result = await _finish(proc)
    assert result.code == 0, result.stderr
    events = lines + [json.loads(line) for line in result.stdout.splitlines()]
    seen = _check_transitions(events)
    print(f"jobs watch --json: {len(events)} lines, statuses {seen}")
    assert seen[natural.id][-1] == "TRAINING_JOB_COMPLETED"
    assert seen[held.id] == ["TRAINING_JOB_RUNNING", "TRAINING_JOB_COMPLETED"]
    assert "all 2 watched jobs finished" in result.stderr


async def test_watch_a_whole_project_until_ctrl_c(fake: FakeTrainingAPI) -> None:
    await _project(fake, "whole")
    pid = (await cli("--json", "projects", "get", "whole", api=fake)).json()["id"]
    job = fake.add_job(pid, {"image": {"base_image": "x"}, "name": "one"})
    proc = await _spawn("jobs", "watch", "whole", "--poll-interval", "0.2", env=_env(fake))
    assert proc.stdout is not None
    lines: list[str] = []
    while True:  # the plain lines, until the job finished; bounded by TIMEOUT
        line = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()
        assert line, "a whole-project watch ended by itself"
        lines.append(line)
        if "-> COMPLETED" in line:
            break
    assert all(job.id in line and "one" in line for line in lines)
    assert "new -> " in lines[0]
    await asyncio.sleep(0.5)
    assert proc.returncode is None  # a whole project is watched until Ctrl-C
    proc.send_signal(signal.SIGINT)
    result = await _finish(proc)
    assert result.code == 130
    assert "interrupted" in result.stderr
    assert "Traceback" not in result.stderr


# --- jobs supervise ------------------------------------------------------------------------


def _spec_file(tmp_path: Path) -> Path:
    spec = tmp_path / "job.json"
    spec.write_text(json.dumps({"image": {"base_image": "x"}, "name": "from-file"}))
    return spec


async def test_supervise_relaunches_a_preempted_job_as_attempt_2(
    fake: FakeTrainingAPI, tmp_path: Path
) -> None:
    pid = await _project(fake)
    fake.inject("preemption", times=1, after=1)  # the first create is preempted
    result = await cli(
        "--json",
        "jobs",
        "supervise",
        pid,
        str(_spec_file(tmp_path)),
        "--count",
        "2",
        "--name",
        "sup",
        api=fake,
    )
    assert result.code == 0, result.stderr
    lines = result.json_lines()
    events = [line for line in lines if line["event"] == "status"]
    runs = [line for line in lines if line["event"] == "run"]
    summary = lines[-1]
    assert summary == {"event": "summary", "runs": 2, "completed": 2, "relaunches": 1}
    assert [run["name"] for run in runs] == ["sup-0001", "sup-0002"]
    relaunched = [run for run in runs if len(run["attempts"]) == 2]
    assert len(relaunched) == 1
    first, second = relaunched[0]["attempts"]
    assert first["status"] == "TRAINING_JOB_PREEMPTED"
    assert second["name"] == f"{relaunched[0]['name']}-attempt-2"
    assert second["status"] == "TRAINING_JOB_COMPLETED"
    assert any(e["name"] == second["name"] for e in events)
    assert any(e["status"] == "TRAINING_JOB_PREEMPTED" for e in events)
    _check_transitions(events)
    assert sorted(str(j.name) for j in fake.jobs.values()) == sorted(
        ["sup-0001", "sup-0002", second["name"]]
    )
    assert "2 of 2 runs completed, 1 relaunches" in result.stderr


async def test_supervise_exits_1_when_a_run_does_not_complete(
    fake: FakeTrainingAPI, tmp_path: Path
) -> None:
    await _project(fake, "sv")
    fake.inject("preemption", times=1, after=1)
    result = await cli(
        "jobs", "supervise", "sv", str(_spec_file(tmp_path)), "--max-attempts", "1", api=fake
    )
    assert result.code == 1
    assert "from-file" in result.stdout
    assert "PREEMPTED" in result.stdout  # the event lines and the summary table
    assert "0 of 1 runs completed" in result.stderr
    assert "1 of 1 runs did not complete" in result.stderr
    assert len(fake.jobs) == 1


async def test_supervise_usage_errors_come_before_any_request(tmp_path: Path) -> None:
    unnamed = tmp_path / "unnamed.json"
    unnamed.write_text(json.dumps({"image": {"base_image": "x"}}))
    env = _env(BASETEN_API_KEY="k", BASETEN_BASE_URL="http://127.0.0.1:9")
    no_name = await cli("jobs", "supervise", "p", str(unnamed), env=env)
    assert no_name.code == 2
    assert "needs a name" in no_name.stderr
    bad_status = await cli(
        "jobs", "supervise", "p", str(unnamed), "--name", "n", "--relaunch-on", "nope", env=env
    )
    assert bad_status.code == 2
    assert "unknown status" in bad_status.stderr
