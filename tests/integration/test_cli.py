"""The ``baseten-training`` command line, run as a real subprocess against the fake API.

The fake runs in the test's event loop; the CLI runs through
``asyncio.create_subprocess_exec`` so the loop keeps serving while it works.
Every subprocess is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import socket
import sys
from collections import Counter
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from baseten_training_async._cli._output import Output, clean, one_line
from baseten_training_async.testing import FakeClock, FakeTrainingAPI, Route

TIMEOUT = 60.0


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    def json(self) -> Any:
        return json.loads(self.stdout)

    def json_lines(self) -> list[Any]:
        return [json.loads(line) for line in self.stdout.splitlines()]

    @property
    def error_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "error" in line]


def _env(api: FakeTrainingAPI | None = None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASETEN_")}
    env["NO_COLOR"] = "1"
    if api is not None:
        env["BASETEN_BASE_URL"] = api.url
        env["BASETEN_API_KEY"] = api.api_key
    env.update(extra)
    return env


async def _spawn(*args: str, env: Mapping[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "baseten_training_async",
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=dict(env),
    )


async def _finish(
    proc: asyncio.subprocess.Process, stdin: bytes | None = None, timeout: float = TIMEOUT
) -> Result:
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except TimeoutError:
        proc.kill()
        await proc.communicate()
        raise AssertionError(f"CLI did not finish within {timeout}s") from None
    assert proc.returncode is not None
    return Result(proc.returncode, out.decode(), err.decode())


async def cli(
    *args: str,
    api: FakeTrainingAPI | None = None,
    env: Mapping[str, str] | None = None,
    stdin: bytes | None = None,
    timeout: float = TIMEOUT,
) -> Result:
    """Run ``python -m baseten_training_async ARGS`` and collect what it printed."""
    proc = await _spawn(*args, env=env if env is not None else _env(api))
    result = await _finish(proc, stdin, timeout)
    if "--debug" not in args:
        assert "Traceback" not in result.stderr, result.stderr
    return result


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def fake() -> AsyncIterator[FakeTrainingAPI]:
    # 20x speed: a job goes CREATED -> COMPLETED in about 0.65 s of real time.
    async with FakeTrainingAPI(seed=3, clock=FakeClock.real(speed=20)) as api:
        yield api


async def _project(api: FakeTrainingAPI, name: str = "cli-tests") -> str:
    result = await cli("--json", "projects", "upsert", name, api=api)
    assert result.code == 0, result.stderr
    project_id: str = result.json()["id"]
    return project_id


# --- usage ---------------------------------------------------------------------------------


async def test_help_lists_commands_and_exit_codes() -> None:
    result = await cli("--help", env=_env())
    assert result.code == 0
    for word in ("projects", "jobs", "fake-server", "demo", "exit codes", "130"):
        assert word in result.stdout
    jobs_help = await cli("jobs", "--help", env=_env())
    for command in ("create", "recreate", "get", "list", "search", "stop", "wait", "logs"):
        assert command in jobs_help.stdout


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        ([], "usage"),
        (["--no-such-flag"], "unrecognized arguments"),
        (["jobs"], "required"),
        (["jobs", "get", "p1"], "JOB_ID"),
        (["jobs", "create", "p1", "--accelerator", "H100:zero"], "COUNT"),
        (["jobs", "create", "p1", "--image", "x", "--count", "0"], "--count"),
        (["jobs", "create", "p1"], "spec.image"),
        (["jobs", "create", "p1", "--image", "x", "--env", "NOVALUE"], "KEY=VALUE"),
        (["jobs", "create", "p1", "--image", "x", "--memory", ""], "spec.compute.memory"),
        (["jobs", "create", "p1", "--spec", "/nonexistent/spec.json"], "cannot read"),
        (["jobs", "logs", "p1", "j1", "--min-level", "LOUD"], "invalid choice"),
    ],
)
async def test_usage_errors_exit_2_with_one_line(argv: list[str], needle: str) -> None:
    # A key and an unreachable URL: usage errors must be caught before any request.
    env = _env(BASETEN_API_KEY="k", BASETEN_BASE_URL=f"http://127.0.0.1:{_free_port()}")
    result = await cli(*argv, env=env)
    assert result.code == 2, result
    no_key = await cli(*argv, env=_env())  # usage errors win over a missing key
    assert no_key.code == 2, no_key
    assert needle in result.stderr
    if argv:
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert result.stdout == ""


async def test_spec_file_errors(tmp_path: Path) -> None:
    env = _env(BASETEN_API_KEY="k", BASETEN_BASE_URL=f"http://127.0.0.1:{_free_port()}")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text("{not json")
    wrong_type = tmp_path / "wrong.toml"
    wrong_type.write_text('[image]\nbase_image = "x"\n[compute]\nnode_count = "two"\n')
    unknown = tmp_path / "unknown.json"
    unknown.write_text('{"image": {"base_image": "x"}, "gpus": 8}')
    for path, needle in [
        (bad_json, "invalid JSON"),
        (wrong_type, "spec.compute.node_count"),
        (unknown, "spec.gpus"),
    ]:
        result = await cli("jobs", "create", "p1", "--spec", str(path), env=env)
        assert result.code == 2, result
        assert needle in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


async def test_yaml_spec_needs_pyyaml(tmp_path: Path) -> None:
    # Whether or not PyYAML is installed here, the CLI must not find it.
    hidden = tmp_path / "no_yaml"
    hidden.mkdir()
    (hidden / "yaml.py").write_text("raise ImportError('PyYAML hidden for this test')\n")
    spec = tmp_path / "job.yaml"
    spec.write_text("image:\n  base_image: hello-world\n")
    env = _env(
        BASETEN_API_KEY="k",
        BASETEN_BASE_URL=f"http://127.0.0.1:{_free_port()}",
        PYTHONPATH=str(hidden),
    )
    result = await cli("jobs", "create", "p1", "--spec", str(spec), env=env)
    assert result.code == 2
    assert "PyYAML" in result.stderr


# --- projects ------------------------------------------------------------------------------


async def test_projects_commands(fake: FakeTrainingAPI) -> None:
    upserted = await cli("--json", "projects", "upsert", "alpha", api=fake)
    assert upserted.code == 0, upserted.stderr
    project = upserted.json()
    assert project["name"] == "alpha"
    assert set(project) >= {"id", "created_at", "updated_at", "latest_job", "team_name"}

    again = await cli("projects", "upsert", "alpha", "--json", api=fake)  # options after
    assert again.json()["id"] == project["id"]

    team = await cli("--json", "projects", "upsert", "beta", "--team-id", "team1rsch", api=fake)
    assert team.json()["team_name"] == "Research"

    listed = await cli("--json", "projects", "list", api=fake)
    assert sorted(p["name"] for p in listed.json()) == ["alpha", "beta"]

    table = await cli("projects", "list", api=fake)
    assert table.code == 0
    header, *rows = table.stdout.splitlines()
    assert header.split()[:2] == ["ID", "NAME"]
    assert any(project["id"] in row and "alpha" in row for row in rows)

    got = await cli("--json", "projects", "get", project["id"], api=fake)
    assert got.json() == {**project, "updated_at": got.json()["updated_at"]}
    human = await cli("projects", "get", project["id"], api=fake)
    assert "alpha" in human.stdout

    deleted = await cli("--json", "projects", "delete", project["id"], api=fake)
    assert deleted.json() == {"id": project["id"], "deleted": True}
    gone = await cli("projects", "get", project["id"], api=fake)
    assert gone.code == 4
    assert gone.stderr.startswith("error: not found:")


# --- jobs: create --------------------------------------------------------------------------


async def test_jobs_create_from_flags(fake: FakeTrainingAPI) -> None:
    pid = await _project(fake)
    result = await cli(
        "--json",
        "jobs",
        "create",
        pid,
        "--name",
        "sft-1",
        "--image",
        "pytorch/pytorch:2.4.0",
        "--accelerator",
        "H100:8",
        "--nodes",
        "2",
        "--cpu",
        "16",
        "--memory",
        "64Gi",
        "--command",
        "pip install -r requirements.txt",
        "--command",
        "python train.py",
        "--env",
        "WANDB_MODE=offline",
        "--env",
        "EQ=a=b",
        api=fake,
    )
    assert result.code == 0, result.stderr
    job = result.json()
    assert job["name"] == "sft-1"
    assert job["training_project_id"] == pid
    assert job["instance_type"]["gpu_type"] == "H100"
    sent = fake.jobs[job["id"]].spec
    assert sent["image"]["base_image"] == "pytorch/pytorch:2.4.0"
    assert sent["compute"]["accelerator"] == {"accelerator": "H100", "count": 8}
    assert (sent["compute"]["node_count"], sent["compute"]["cpu_count"]) == (2, 16)
    assert sent["compute"]["memory"] == "64Gi"
    assert sent["runtime"]["start_commands"] == [
        "pip install -r requirements.txt",
        "python train.py",
    ]
    assert sent["runtime"]["environment_variables"] == {"WANDB_MODE": "offline", "EQ": "a=b"}

    human = await cli("jobs", "create", pid, "--image", "hello-world", api=fake)
    assert human.code == 0
    assert "created job" in human.stdout
    assert "CREATED" in human.stdout


async def test_jobs_create_from_spec_files_with_flag_overrides(
    fake: FakeTrainingAPI, tmp_path: Path
) -> None:
    pid = await _project(fake)
    # As copied from the API docs: wrapped in "training_job", with "artifacts": null.
    docs = {
        "training_job": {
            "name": "from-json",
            "image": {"base_image": "hello-world"},
            "compute": {"node_count": 1, "accelerator": {"accelerator": "A10G", "count": 1}},
            "runtime": {
                "start_commands": ["python a.py"],
                "environment_variables": {"A": "1"},
                "artifacts": None,
            },
        }
    }
    json_spec = tmp_path / "job.json"
    json_spec.write_text(json.dumps(docs))
    result = await cli(
        "--json",
        "jobs",
        "create",
        pid,
        "--spec",
        str(json_spec),
        "--accelerator",
        "H100:4",
        "--env",
        "B=2",
        api=fake,
    )
    assert result.code == 0, result.stderr
    sent = fake.jobs[result.json()["id"]].spec
    assert sent["name"] == "from-json"
    assert sent["compute"]["accelerator"] == {"accelerator": "H100", "count": 4}
    assert sent["runtime"]["start_commands"] == ["python a.py"]
    assert sent["runtime"]["environment_variables"] == {"A": "1", "B": "2"}

    toml_spec = tmp_path / "job.toml"
    toml_spec.write_text(
        'name = "from-toml"\n'
        "[image]\nbase_image = 'hello-world'\n"
        "[compute]\nnode_count = 3\n"
        "[runtime]\nstart_commands = ['torchrun train.py']\n"
    )
    result = await cli("--json", "jobs", "create", pid, "--spec", str(toml_spec), api=fake)
    assert result.code == 0, result.stderr
    sent = fake.jobs[result.json()["id"]].spec
    assert (sent["name"], sent["compute"]["node_count"]) == ("from-toml", 3)

    stdin_spec = json.dumps({"image": {"base_image": "hello-world"}, "name": "from-stdin"})
    result = await cli(
        "--json", "jobs", "create", pid, "--spec", "-", api=fake, stdin=stdin_spec.encode()
    )
    assert result.json()["name"] == "from-stdin"


async def test_jobs_create_count_fans_out_exactly_once(fake: FakeTrainingAPI) -> None:
    pid = await _project(fake)
    fake.inject("status", route=Route.CREATE_JOB, status=503, probability=0.15)
    fake.inject("drop_after_commit", route=Route.CREATE_JOB, probability=0.15)
    fake.inject("drop_before", route=Route.CREATE_JOB, probability=0.1)
    result = await cli(
        "--json",
        "--request-timeout",
        "2",
        "--commit-window",
        "2",
        "jobs",
        "create",
        pid,
        "--image",
        "hello-world",
        "--name",
        "batch",
        "--count",
        "24",
        "--concurrency",
        "6",
        api=fake,
    )
    assert result.code == 0, result.stderr
    events = result.json_lines()  # one JSON object per line
    assert [e for e in events if e["event"] == "error"] == []
    assert [e["done"] for e in events if e["event"] == "progress"][-1] == 24
    names = [e["job"]["name"] for e in events if e["event"] == "job"]
    assert names == [f"batch-{i:04d}" for i in range(1, 25)]  # input order
    assert events[-1] == {
        "event": "summary",
        "requested": 24,
        "created": 24,
        "adopted": 0,
        "failed": 0,
        "not_started": 0,
    }
    on_server = Counter(job.name for job in fake.jobs.values())
    assert all(on_server[name] == 1 for name in names), on_server
    assert len(fake.jobs) == 24
    assert fake.stats.injected["drop_after_commit"] > 0  # the seed does hit lost responses
    assert "creating jobs: 24/24" in result.stderr  # plain progress when not a terminal


async def test_jobs_create_count_reports_failures(fake: FakeTrainingAPI) -> None:
    pid = await _project(fake)
    fake.inject("status", route=Route.CREATE_JOB, status=400, message="quota exceeded", times=2)
    result = await cli(
        "jobs",
        "create",
        pid,
        "--image",
        "hello-world",
        "--name",
        "quota",
        "--count",
        "5",
        "--concurrency",
        "1",
        api=fake,
    )
    assert result.code == 5
    assert "created 3 of 5 jobs, 2 failed" in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 2
    assert all("quota exceeded" in line for line in errors)
    hint = "to retry the failed ones: baseten-training jobs create"
    assert hint in result.stderr
    # The hint's command adopts the 3 jobs and creates only the 2 that failed.
    again = await cli(
        "jobs",
        "create",
        pid,
        "--image",
        "hello-world",
        "--name",
        "quota",
        "--count",
        "5",
        api=fake,
    )
    assert again.code == 0, again.stderr
    assert "created 2 of 5 jobs (3 already existed, adopted), 0 failed" in again.stderr
    assert sorted(job.name or "" for job in fake.jobs.values()) == [
        f"quota-{i:04d}" for i in range(1, 6)
    ]


# --- jobs: observe and control -------------------------------------------------------------


async def test_jobs_get_list_search_stop_recreate_delete(fake: FakeTrainingAPI) -> None:
    fake.capacity = 0  # jobs stay PENDING, so they can still be stopped
    pid = await _project(fake)
    other = await _project(fake, "other")
    created = await cli("--json", "jobs", "create", pid, "--image", "x", "--name", "a", api=fake)
    job = created.json()
    await cli("--json", "jobs", "create", other, "--image", "x", "--name", "b", api=fake)

    got = await cli("--json", "jobs", "get", pid, job["id"], api=fake)
    assert got.code == 0
    assert (got.json()["id"], got.json()["name"]) == (job["id"], "a")

    listed = await cli("--json", "jobs", "list", pid, api=fake)
    assert [j["id"] for j in listed.json()] == [job["id"]]
    table = await cli("jobs", "list", pid, api=fake)
    assert table.stdout.splitlines()[0].split()[:3] == ["ID", "NAME", "STATUS"]
    assert job["id"] in table.stdout

    everything = await cli("--json", "jobs", "search", "--order", "asc", api=fake)
    assert [j["name"] for j in everything.json()] == ["a", "b"]
    one_project = await cli("--json", "jobs", "search", "--project-id", other, api=fake)
    assert [j["name"] for j in one_project.json()] == ["b"]
    by_status = await cli("--json", "jobs", "search", "--status", "completed", api=fake)
    assert by_status.json() == []
    by_status = await cli("--json", "jobs", "search", "--status", "pending", api=fake)
    assert len(by_status.json()) == 2

    stopped = await cli("--json", "jobs", "stop", pid, job["id"], api=fake)
    assert stopped.code == 0, stopped.stderr
    assert stopped.json()["current_status"] == "TRAINING_JOB_STOPPED"
    by_status = await cli("--json", "jobs", "search", "--status", "STOPPED", api=fake)
    assert [j["id"] for j in by_status.json()] == [job["id"]]

    recreated = await cli("--json", "jobs", "recreate", pid, job["id"], api=fake)
    assert recreated.code == 0, recreated.stderr
    assert recreated.json()["id"] != job["id"]
    assert fake.stats.jobs_recreated == 1

    deleted = await cli("--json", "jobs", "delete", pid, job["id"], api=fake)
    assert deleted.json()["deleted"] is True
    assert job["id"] not in fake.jobs


async def test_jobs_wait_and_logs(fake: FakeTrainingAPI) -> None:
    pid = await _project(fake)
    job = (await cli("--json", "jobs", "create", pid, "--image", "x", api=fake)).json()

    waited = await cli("jobs", "wait", pid, job["id"], "--poll-interval", "0.1", api=fake)
    assert waited.code == 0, waited.stderr
    assert "COMPLETED" in waited.stdout
    assert f"{job['id']}: COMPLETED" in waited.stderr  # status changes on stderr

    logs = await cli("--json", "jobs", "logs", pid, job["id"], api=fake)
    lines = logs.json_lines()
    assert lines
    assert all(set(line) >= {"timestamp", "message", "level"} for line in lines)
    assert lines == sorted(lines, key=lambda line: int(line["timestamp"]))
    assert "Training completed successfully" in lines[-1]["message"]
    errors_only = await cli(
        "--json", "jobs", "logs", pid, job["id"], "--min-level", "WARNING", api=fake
    )
    assert errors_only.code == 0
    assert all(line["level"] in ("WARNING", "ERROR") for line in errors_only.json_lines())

    human = await cli("jobs", "logs", pid, job["id"], api=fake)
    assert len(human.stdout.splitlines()) >= len(lines)
    assert "INFO" in human.stdout

    fresh = (await cli("--json", "jobs", "create", pid, "--image", "x", api=fake)).json()
    followed = await cli(
        "jobs", "logs", pid, fresh["id"], "--follow", "--poll-interval", "0.1", api=fake
    )
    assert followed.code == 0, followed.stderr
    assert "Training completed successfully" in followed.stdout

    # The fake's default outcome: jobs named "...fail..." fail.
    failing = await cli(
        "--json", "jobs", "create", pid, "--image", "x", "--name", "will-fail", api=fake
    )
    waited = await cli(
        "--json", "jobs", "wait", pid, failing.json()["id"], "--poll-interval", "0.1", api=fake
    )
    assert waited.code == 1
    assert waited.json()["current_status"] == "TRAINING_JOB_FAILED"
    assert "error: job" in waited.stderr
    assert "finished as FAILED" in waited.stderr


async def test_wait_timeout_exits_1(fake: FakeTrainingAPI) -> None:
    pid = await _project(fake)
    job = fake.add_job(pid)
    fake.force_status(job.id, "TRAINING_JOB_RUNNING")
    result = await cli(
        "jobs", "wait", pid, job.id, "--timeout", "0.3", "--poll-interval", "0.1", api=fake
    )
    assert result.code == 1
    assert "still TRAINING_JOB_RUNNING" in result.stderr


# --- untrusted text ------------------------------------------------------------------------

NASTY = "\x1b]0;pwned\x07\x1b[2J\x1b[31mred\x1b[0m \x9b31mc1\x07 bell\rback\x00 \u202eevil"


async def test_server_text_is_sanitised(fake: FakeTrainingAPI) -> None:
    pid = await _project(fake)
    job = fake.add_job(pid, {"image": {"base_image": "x"}, "name": "n\x1b[8mhidden"})
    start_ns = fake.clock.now_ms() * 1_000_000
    fake.set_logs(job.id, [(start_ns, NASTY, "INFO"), (start_ns + 1, "two\n\tindented", "INFO")])

    human = await cli("jobs", "logs", pid, job.id, api=fake)
    assert human.code == 0, human.stderr
    for bad in ("\x1b", "\x07", "\x9b", "\r", "\x00", "\u202e"):
        assert bad not in human.stdout
    assert "red c1 bell" in human.stdout
    assert "two\n\tindented" in human.stdout  # newline and tab survive

    listed = await cli("jobs", "list", pid, api=fake)
    assert "\x1b" not in listed.stdout
    assert "nhidden" in listed.stdout

    as_json = await cli("--json", "jobs", "logs", pid, job.id, api=fake)
    assert as_json.json_lines()[0]["message"] == NASTY  # machine output stays exact
    assert "\x1b" not in as_json.stdout

    fake.inject("status", route=Route.GET_JOB, status=500, message=f"boom\n{NASTY}")
    failed = await cli("--max-retries", "0", "jobs", "get", pid, job.id, api=fake)
    assert failed.code == 5
    assert failed.stdout == ""
    assert len(failed.stderr.splitlines()) == 1
    assert failed.stderr.startswith("error: API error 500: boom")
    for bad in ("\x1b", "\x07", "\x9b", "\r", "\x00", "\u202e"):
        assert bad not in failed.stderr


# --- failures and exit codes ---------------------------------------------------------------


async def test_failure_exit_codes(fake: FakeTrainingAPI) -> None:
    pid = await _project(fake)

    bad_key = await cli("--api-key", "wrong", "projects", "list", api=fake)
    assert bad_key.code == 3
    assert len(bad_key.stderr.splitlines()) == 1
    assert "authentication failed" in bad_key.stderr
    assert "wrong" not in bad_key.stderr  # the key is never echoed

    no_key = await cli("projects", "list", env=_env(BASETEN_BASE_URL=fake.url))
    assert no_key.code == 3
    assert no_key.stderr == "error: no API key: pass --api-key or set $BASETEN_API_KEY\n"

    newline_key = await cli(
        "projects", "list", env=_env(BASETEN_BASE_URL=fake.url, BASETEN_API_KEY="k\n")
    )
    assert newline_key.code == 3
    assert "invalid API key" in newline_key.stderr
    assert "whitespace" in newline_key.stderr

    fake.inject("status", route=Route.LIST_PROJECTS, status=403, message="not your team", times=1)
    forbidden = await cli("projects", "list", api=fake)
    assert forbidden.code == 3
    assert "permission denied" in forbidden.stderr

    unknown_job = await cli("jobs", "get", pid, "nosuchjob", api=fake)
    assert unknown_job.code == 4
    assert unknown_job.stderr.startswith("error: not found: 404")
    assert len(unknown_job.stderr.splitlines()) == 1
    assert (await cli("jobs", "logs", pid, "nosuchjob", api=fake)).code == 4
    assert (await cli("projects", "get", "nosuchproject", api=fake)).code == 4

    refused = await cli(
        "--base-url",
        f"http://127.0.0.1:{_free_port()}",
        "--max-retries",
        "1",
        "projects",
        "list",
        api=fake,
    )
    assert refused.code == 5
    assert refused.stderr.startswith("error: connection error:")
    assert len(refused.stderr.splitlines()) == 1

    fake.inject("status", route=Route.LIST_PROJECTS, status=500, times=1)
    server_error = await cli("--max-retries", "0", "projects", "list", api=fake)
    assert server_error.code == 5

    debug = await cli("--debug", "jobs", "get", pid, "nosuchjob", api=fake)
    assert debug.code == 4
    assert "Traceback" in debug.stderr


async def test_interrupt_exits_130(fake: FakeTrainingAPI) -> None:
    pid = await _project(fake)
    job = fake.add_job(pid)
    fake.force_status(job.id, "TRAINING_JOB_RUNNING")  # never finishes
    start_ns = fake.clock.now_ms() * 1_000_000
    fake.set_logs(job.id, [(start_ns, "first line", "INFO")])
    proc = await _spawn(
        "jobs", "logs", pid, job.id, "--follow", "--poll-interval", "0.1", env=_env(fake)
    )
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
    assert b"first line" in first
    proc.send_signal(signal.SIGINT)
    result = await _finish(proc)
    assert result.code == 130
    assert result.stderr.strip() == "interrupted"
    assert "Traceback" not in result.stderr


# --- offline commands ----------------------------------------------------------------------


async def test_fake_server_command_serves_the_api() -> None:
    port = _free_port()
    proc = await _spawn("fake-server", "--port", str(port), "--seed", "5", env=_env())
    try:
        assert proc.stdout is not None
        banner = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        url = f"http://127.0.0.1:{port}"
        assert url in banner.decode()
        env = _env(BASETEN_BASE_URL=url, BASETEN_API_KEY="fake-api-key")
        created = await cli("--json", "projects", "upsert", "served", env=env)
        assert created.code == 0, created.stderr
        assert created.json()["name"] == "served"
        assert (await cli("--api-key", "nope", "projects", "list", env=env)).code == 3
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        result = await _finish(proc)
    assert result.code == 0
    assert "stopped" in result.stderr


async def test_demo_json_reports_zero_duplicates() -> None:
    result = await cli("--json", "demo", "--count", "40", env=_env(), timeout=45)
    assert result.code == 0, result.stderr
    summary = result.json()
    assert summary["jobs_created"] == summary["jobs_on_server"] == 40
    assert summary["duplicates"] == 0
    assert summary["jobs_failed"] == 0
    assert summary["latency_p50_ms"] is not None
    assert summary["latency_p95_ms"] >= summary["latency_p50_ms"]
    assert summary["requests_per_s"] > 0
    assert summary["followed_job"]["status"] == "TRAINING_JOB_COMPLETED"
    assert summary["followed_job"]["log_lines"] > 0


async def test_demo_prints_a_summary_and_follows_logs() -> None:
    result = await cli("demo", "--count", "60", "--seed", "7", env=_env(), timeout=45)
    assert result.code == 0, result.stderr
    out = result.stdout
    assert "Demo summary" in out
    assert "jobs created:                  60 / 60" in out
    assert "duplicates on the server:      0" in out
    for label in (
        "retries (retry budget spent):",
        "429s absorbed:",
        "p50 / p95",
        "elapsed:",
        "req/s",
    ):
        assert label in out
    assert "Following logs of demo-sft-0060" in out
    assert "Training completed successfully" in out
    assert out.rstrip().endswith("finished: COMPLETED")


# --- output helpers (in process) -----------------------------------------------------------


def test_clean_strips_control_sequences() -> None:
    assert clean(NASTY) == "red c1 bellback evil"
    assert clean("a\tb\nc") == "a\tb\nc"
    assert clean("\x1bP+q\x1b\\ok \x1b[?25l") == "ok "
    assert one_line(" two\nlines\t here ") == "two lines here"


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_tables_use_rich_on_terminals_and_plain_text_otherwise(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rows = [["j1", "[bold]not markup[/bold]", "RUNNING"]]
    tty = _Tty()
    Output(json_mode=False, stdout=tty).table(["ID", "NAME", "STATUS"], rows, status_column=2)
    assert "[bold]not markup[/bold]" in tty.getvalue()  # cells are never parsed as markup
    assert "━" in tty.getvalue() or "─" in tty.getvalue()

    monkeypatch.setitem(sys.modules, "rich", None)  # as if the cli extra is not installed
    monkeypatch.setitem(sys.modules, "rich.console", None)
    plain = _Tty()
    Output(json_mode=False, stdout=plain).table(["ID", "NAME", "STATUS"], rows)
    assert plain.getvalue().splitlines()[0].split() == ["ID", "NAME", "STATUS"]
    err = _Tty()
    with Output(json_mode=False, stderr=err).progress("creating", total=2) as update:
        update(1, 0, None)
        update(1, 1, 2)
    assert err.getvalue().splitlines()[-1].startswith("creating: 2/2 (1 failed")
