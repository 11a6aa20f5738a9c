"""The CLI for daily work: every SDK capability, names or ids, JSON lines, profiles,
completion, spec files and output that says what happened. Subprocesses against the fake.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import pytest
from aiohttp import web

from baseten_training_async import AsyncTrainingClient, TrainingProject
from baseten_training_async._cli._exit import UsageError
from baseten_training_async._cli._project import resolve_project
from baseten_training_async.testing import FakeTrainingAPI, Route

from .test_cli import TIMEOUT, _env, _finish, _project, _spawn, cli, fake

__all__ = ["fake"]  # the fixture, shared with test_cli


# --- creating safely -----------------------------------------------------------------------


async def test_single_create_adopts_an_existing_name_unless_no_adopt(fake: FakeTrainingAPI) -> None:
    await _project(fake, "adopt")
    first = await cli("--json", "jobs", "create", "adopt", "--image", "x", "--name", "a", api=fake)
    assert first.code == 0, first.stderr
    again = await cli("--json", "jobs", "create", "adopt", "--image", "x", "--name", "a", api=fake)
    assert again.code == 0, again.stderr
    assert again.json()["id"] == first.json()["id"]
    assert "already exists" in again.stderr
    assert len(fake.jobs) == 1
    forced = await cli(
        "--json", "jobs", "create", "adopt", "--image", "x", "--name", "a", "--no-adopt", api=fake
    )
    assert forced.code == 0, forced.stderr
    assert forced.json()["id"] != first.json()["id"]
    assert len(fake.jobs) == 2


async def test_unnamed_creates_warn_and_batches_need_a_name(fake: FakeTrainingAPI) -> None:
    pid = await _project(fake)
    unnamed = await cli("--json", "jobs", "create", pid, "--image", "x", api=fake)
    assert unnamed.code == 0
    assert "warning: this job has no name" in unnamed.stderr
    json.loads(unnamed.stdout)  # the warning stays off stdout
    quiet = await cli("jobs", "create", pid, "--image", "x", "--allow-unnamed", api=fake)
    assert "warning" not in quiet.stderr

    refused = await cli("jobs", "create", pid, "--image", "x", "--count", "3", api=fake)
    assert refused.code == 2
    assert "--count needs --name" in refused.stderr
    generated = await cli(
        "jobs", "create", pid, "--image", "x", "--count", "3", "--allow-unnamed", api=fake
    )
    assert generated.code == 0, generated.stderr
    assert len(fake.jobs) == 5


async def test_an_unknown_create_outcome_says_the_job_may_exist(fake: FakeTrainingAPI) -> None:
    pid = await _project(fake)
    fake.inject("drop_after_commit", route=Route.CREATE_JOB, times=1)
    result = await cli(
        "--request-timeout",
        "2",
        "jobs",
        "create",
        pid,
        "--image",
        "x",
        "--allow-unnamed",
        api=fake,
    )
    assert result.code == 5
    assert len(fake.jobs) == 1  # it did exist
    assert "may exist; check with: baseten-training jobs list " + pid in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


async def test_recreate_says_the_new_job_shares_the_name(fake: FakeTrainingAPI) -> None:
    fake.capacity = 0
    await _project(fake, "re")
    job = await cli("--json", "jobs", "create", "re", "--image", "x", "--name", "n", api=fake)
    recreated = await cli("--json", "jobs", "recreate", "re", job.json()["id"], api=fake)
    assert recreated.code == 0, recreated.stderr
    assert "same name" in recreated.stderr


# --- projects by name or id ----------------------------------------------------------------


async def test_projects_by_name_or_id_everywhere(fake: FakeTrainingAPI) -> None:
    pid = await _project(fake, "long")
    by_name = await cli("--json", "jobs", "create", "long", "--image", "x", "--name", "j", api=fake)
    assert by_name.code == 0, by_name.stderr
    assert by_name.json()["training_project_id"] == pid
    for ref in ("long", pid):
        listed = await cli("--json", "jobs", "list", ref, api=fake)
        assert [j["name"] for j in listed.json()] == ["j"]
    got = await cli("--json", "projects", "retrieve", "long", api=fake)
    assert got.json()["id"] == pid
    assert (await cli("--json", "projects", "get", pid, api=fake)).json()["name"] == "long"
    search = await cli("--json", "jobs", "search", "--project", "long", api=fake)
    assert [j["name"] for j in search.json()] == ["j"]

    missing = await cli("jobs", "list", "nope", api=fake)
    assert missing.code == 4
    assert missing.stderr == (
        "error: not found: no project with id or name 'nope' "
        "(see: baseten-training projects list)\n"
    )


class _Projects:
    def __init__(self, projects: list[TrainingProject]) -> None:
        self.projects = projects

    async def list(self) -> list[TrainingProject]:
        return self.projects


class _Client:
    def __init__(self, projects: list[TrainingProject]) -> None:
        self.projects = _Projects(projects)


def _project_named(pid: str, name: str) -> TrainingProject:
    return TrainingProject(
        id=pid, name=name, created_at="2026-01-01T00:00:00Z", updated_at="", latest_job=None
    )


async def test_a_name_two_projects_share_is_refused_as_ambiguous() -> None:
    # The fake upserts by name, so it cannot hold two projects of one name.
    two = [_project_named("p1", "dup"), _project_named("p2", "dup")]
    client = cast(AsyncTrainingClient, _Client(two))
    with pytest.raises(UsageError, match=r"'dup' is ambiguous: 2 projects have it \(p1, p2\)"):
        await resolve_project(client, "dup")
    assert (await resolve_project(client, "p2")).id == "p2"
    id_and_name = cast(AsyncTrainingClient, _Client([*two, _project_named("dup", "x")]))
    assert (await resolve_project(id_and_name, "dup")).id == "dup"  # an id wins over names
    assert (await resolve_project(id_and_name, " x ")).id == "dup"
    with pytest.raises(UsageError, match="name or id"):
        await resolve_project(client, "  ")


# --- output that says what happened --------------------------------------------------------


async def test_stop_on_a_finished_job_says_so(fake: FakeTrainingAPI) -> None:
    pid = await _project(fake)
    job = fake.add_job(pid)
    fake.force_status(job.id, "TRAINING_JOB_COMPLETED")
    refused = await cli("jobs", "stop", pid, job.id, api=fake)
    assert refused.code == 1
    assert "already finished as COMPLETED: nothing to stop" in refused.stderr
    assert "stopped job" not in refused.stdout
    ok = await cli("jobs", "stop", pid, job.id, "--ok-if-done", api=fake)
    assert ok.code == 0
    assert "nothing to stop" in ok.stderr
    assert fake.stats.jobs_stopped == 0


async def test_search_refuses_an_unknown_status() -> None:
    result = await cli("jobs", "search", "--status", "bogus", env=_env())
    assert result.code == 2
    assert "unknown status; known: PENDING" in result.stderr
    assert "COMPLETED" in result.stderr


async def test_demo_offers_no_connection_options() -> None:
    shown = await cli("demo", "--help", env=_env())
    assert "--api-key" not in shown.stdout
    assert "--base-url" not in shown.stdout
    refused = await cli("--base-url", "http://127.0.0.1:9", "demo", env=_env())
    assert refused.code == 2
    assert "do not apply" in refused.stderr


# --- every SDK capability ------------------------------------------------------------------


async def test_find_update_capacity_download_urls_checkpoints(fake: FakeTrainingAPI) -> None:
    fake.capacity = 0  # pending: its priority can change
    pid = await _project(fake, "caps")
    job = fake.add_job(pid, {"image": {"base_image": "x"}, "name": "c"})

    found = await cli("--json", "jobs", "find", job.id, api=fake)
    assert found.code == 0, found.stderr
    assert found.json()["training_project_id"] == pid

    updated = await cli("--json", "jobs", "update", "caps", job.id, "--priority", "7", api=fake)
    assert updated.code == 0, updated.stderr
    assert updated.json()["priority"] == 7

    capacity = await cli("--json", "jobs", "capacity", api=fake)
    assert capacity.code == 0
    assert capacity.json()["gpu_capacities"]
    table = await cli("jobs", "capacity", api=fake)
    assert table.stdout.split()[:5] == ["GPU", "TEAM", "IN", "USE", "BASELINE"]

    urls = await cli("jobs", "download-urls", "caps", job.id, api=fake)
    assert urls.stdout.startswith("https://")
    same = await cli("--json", "jobs", "download_urls", "caps", job.id, api=fake)
    assert same.json() == urls.stdout.split()

    fake.set_checkpoints(job.id, 2)
    checkpoints = await cli("--json", "jobs", "checkpoints", "caps", job.id, api=fake)
    assert len(checkpoints.json()) == 2
    human = await cli("jobs", "checkpoints", "caps", job.id, api=fake)
    assert human.stdout.split()[:2] == ["CHECKPOINT", "TYPE"]

    cache = await cli("--json", "projects", "cache-summary", "caps", api=fake)
    assert cache.code == 0, cache.stderr
    assert cache.json()["project_id"] == pid


async def test_metrics_table_json_and_chart(fake: FakeTrainingAPI) -> None:
    pid = await _project(fake)
    spec = {
        "image": {"base_image": "x"},
        "compute": {"accelerator": {"accelerator": "H100", "count": 2}},
    }
    job = fake.add_job(pid, spec)
    await asyncio.sleep(1.5)  # 30 s of fake time: a few samples of a running job
    as_json = await cli(
        "--json", "jobs", "metrics", pid, job.id, "--since", "1h", "--step", "1", api=fake
    )
    assert as_json.code == 0, as_json.stderr
    assert as_json.json()["cpu_usage"]
    assert len(as_json.json()["cpu_usage"]) > 1
    table = await cli("jobs", "metrics", pid, job.id, api=fake)
    assert "CPU cores" in table.stdout
    assert "GPU util %" in table.stdout
    chart = await cli(
        "jobs", "metrics", pid, job.id, "--chart", "--width", "20", "--step", "1", api=fake
    )
    lines = [line for line in chart.stdout.splitlines() if line.startswith("GPU util %")]
    assert lines
    bars = lines[0].split("  ")[1]
    assert 0 < len(bars) <= 20
    assert set(bars) <= set(" ▁▂▃▄▅▆▇█")
    bad = await cli("jobs", "metrics", pid, job.id, "--since", "yesterday", api=fake)
    assert bad.code == 2


@pytest.fixture
async def files_server() -> AsyncIterator[tuple[str, dict[str, bytes], list[str]]]:
    """A presigned-URL stand-in with Range support, recording each request's Range."""
    blobs = {f"f{i}.bin": os.urandom(50_000 + i) for i in range(3)}
    ranges: list[str] = []

    async def serve(request: web.Request) -> web.StreamResponse:
        data = blobs[request.match_info["name"]]
        header = request.headers.get("Range")
        ranges.append(header or "")
        if header:
            start = int(header.removeprefix("bytes=").rstrip("-"))
            return web.Response(status=206, body=data[start:])
        return web.Response(body=data)

    app = web.Application()
    app.router.add_get("/{name}", serve)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}", blobs, ranges
    finally:
        await runner.cleanup()


async def test_checkpoint_files_list_and_resumable_download(
    fake: FakeTrainingAPI,
    files_server: tuple[str, dict[str, bytes], list[str]],
    tmp_path: Path,
) -> None:
    base, blobs, ranges = files_server
    pid = await _project(fake)
    job = fake.add_job(pid)
    fake.set_checkpoint_files(
        job.id,
        [
            {"relative_file_name": f"ckpt/{n}", "url": f"{base}/{n}", "size_bytes": len(b)}
            for n, b in blobs.items()
        ],
    )
    listed = await cli("--json", "jobs", "checkpoint-files", pid, job.id, api=fake)
    assert sorted(f["relative_file_name"] for f in listed.json()) == [
        f"ckpt/{n}" for n in sorted(blobs)
    ]
    target = tmp_path / "out"
    (target / "ckpt").mkdir(parents=True)
    # An interrupted earlier run left half of f0 behind.
    (target / "ckpt" / "f0.bin.part").write_bytes(blobs["f0.bin"][:20_000])
    done = await cli("jobs", "checkpoint-files", pid, job.id, "--download", str(target), api=fake)
    assert done.code == 0, done.stderr
    for name, data in blobs.items():
        written = (target / "ckpt" / name).read_bytes()
        assert hashlib.sha256(written).digest() == hashlib.sha256(data).digest()
    assert "bytes=20000-" in ranges  # resumed, not restarted
    assert not list(target.rglob("*.part"))
    assert "downloaded 3 of 3 files" in done.stderr

    ranges.clear()
    again = await cli("jobs", "checkpoint-files", pid, job.id, "--download", str(target), api=fake)
    assert again.code == 0
    assert ranges == []  # complete files are not fetched again


async def test_checkpoint_download_refuses_names_outside_the_folder(
    fake: FakeTrainingAPI, tmp_path: Path
) -> None:
    pid = await _project(fake)
    job = fake.add_job(pid)
    fake.set_checkpoint_files(job.id, ["../../escape.bin"])
    result = await cli(
        "jobs", "checkpoint-files", pid, job.id, "--download", str(tmp_path / "d"), api=fake
    )
    assert result.code == 2
    assert "unsafe checkpoint file name" in result.stderr
    assert not (tmp_path / "escape.bin").exists()


# --- JSON lines ----------------------------------------------------------------------------


async def test_logs_follow_json_lines_arrive_before_the_stream_ends(
    fake: FakeTrainingAPI,
) -> None:
    pid = await _project(fake)
    job = fake.add_job(pid)
    fake.force_status(job.id, "TRAINING_JOB_RUNNING")
    start_ns = fake.clock.now_ms() * 1_000_000
    fake.set_logs(job.id, [(start_ns, "first", "INFO")])
    proc = await _spawn(
        "--json", "jobs", "logs", pid, job.id, "-f", "--poll-interval", "0.1", env=_env(fake)
    )
    assert proc.stdout is not None
    first = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
    assert json.loads(first)["message"] == "first"
    assert proc.returncode is None  # the stream is still open
    fake.force_status(job.id, "TRAINING_JOB_COMPLETED")
    result = await _finish(proc)
    assert result.code == 0, result.stderr
    for line in result.stdout.splitlines():
        assert isinstance(json.loads(line), dict)


# --- profiles and completion ---------------------------------------------------------------


async def test_profiles_from_the_config_file(fake: FakeTrainingAPI, tmp_path: Path) -> None:
    await _project(fake, "prof")
    config = tmp_path / "baseten-training" / "config.toml"
    config.parent.mkdir()
    config.write_text(
        'default_profile = "broken"\n'
        "[profiles.local]\n"
        f'base_url = "{fake.url}"\n'
        'api_key_env = "LOCAL_KEY"\n'
        "max_retries = 1\n"
        "[profiles.broken]\n"
        'base_url = "http://127.0.0.1:9"\n'
        f'api_key = "{fake.api_key}"\n'
    )
    env = _env(XDG_CONFIG_HOME=str(tmp_path), LOCAL_KEY=fake.api_key)
    listed = await cli("--json", "--profile", "local", "projects", "list", env=env)
    assert listed.code == 0, listed.stderr
    assert [p["name"] for p in listed.json()] == ["prof"]
    via_env = await cli("--json", "projects", "list", env={**env, "BASETEN_PROFILE": "local"})
    assert via_env.code == 0, via_env.stderr

    # The default profile points nowhere; an environment variable wins over it.
    env_wins = await cli("--json", "projects", "list", env={**env, "BASETEN_BASE_URL": fake.url})
    assert env_wins.code == 0, env_wins.stderr

    shown = await cli("--json", "config", "show", "--profile", "local", env=env)
    doc = shown.json()
    assert doc["base_url"] == fake.url
    assert doc["sources"]["base_url"] == "profile local"
    assert doc["sources"]["max_retries"] == "profile local"
    assert fake.api_key not in shown.stdout  # the key is masked
    path = await cli("config", "path", env=env)
    assert path.stdout.strip() == str(config)

    unknown = await cli("--profile", "nope", "projects", "list", env=env)
    assert unknown.code == 2
    assert "no profile 'nope'" in unknown.stderr
    assert "broken, local" in unknown.stderr
    config.write_text("[profiles.x]\nbase_ur = 'typo'\n")
    typo = await cli("--profile", "x", "projects", "list", env=env)
    assert typo.code == 2
    assert "base_ur" in typo.stderr


async def test_bash_completion_completes_groups_commands_and_options() -> None:
    script = (await cli("completion", "bash", env=_env())).stdout

    def complete(*words: str) -> list[str]:
        line = " ".join(words)
        program = (
            f"{script}\nCOMP_WORDS=(baseten-training {line}); COMP_CWORD={len(words)}; "
            '_baseten_training; printf "%s\\n" "${COMPREPLY[@]}"'
        )
        done = subprocess.run(
            ["bash", "-c", program], capture_output=True, text=True, timeout=30, check=True
        )
        return done.stdout.split()

    assert complete("jo") == ["jobs"]
    assert "checkpoint-files" in complete("jobs", "")
    assert complete("--profile", "prod", "jobs", "cr") == ["create"]
    assert "--no-adopt" in complete("jobs", "create", "p", "--")
    assert complete("completion", "f") == ["fish"]


@pytest.mark.parametrize("shell", ["zsh", "fish"])
async def test_zsh_and_fish_completion_scripts(shell: str) -> None:
    result = await cli("completion", shell, env=_env())
    assert result.code == 0
    assert "baseten-training" in result.stdout
    assert "checkpoint-files" in result.stdout
    if shell == "zsh":
        assert result.stdout.startswith("#compdef baseten-training")
        assert "bashcompinit" in result.stdout
    else:
        assert "complete -c baseten-training -n '__fish_seen_subcommand_from jobs" in (
            result.stdout
        )


# --- spec files ----------------------------------------------------------------------------


async def test_yaml_specs_extensions_and_did_you_mean(
    fake: FakeTrainingAPI, tmp_path: Path
) -> None:
    pid = await _project(fake)
    spec = tmp_path / "job.yaml"
    spec.write_text(
        "name: from-yaml\nimage:\n  base_image: hello-world\ncompute:\n  node_count: 2\n"
    )
    created = await cli("--json", "jobs", "create", pid, "--spec", str(spec), api=fake)
    assert created.code == 0, created.stderr
    assert fake.jobs[created.json()["id"]].spec["compute"]["node_count"] == 2

    text = tmp_path / "job.txt"
    text.write_text('{"image": {"base_image": "x"}}')
    refused = await cli("jobs", "create", pid, "--spec", str(text), api=fake)
    assert refused.code == 2
    assert "unknown spec file type '.txt'; use .json, .toml, .yaml, .yml" in refused.stderr

    typo = tmp_path / "typo.yml"
    typo.write_text("image:\n  base_image: x\ncompute:\n  acelerator: {accelerator: H100}\n")
    hinted = await cli("jobs", "create", pid, "--spec", str(typo), api=fake)
    assert hinted.code == 2
    assert "spec.compute.acelerator" in hinted.stderr
    assert "did you mean 'accelerator'?" in hinted.stderr


async def test_teams_capacity_queue_sessions_and_artifacts(
    fake: FakeTrainingAPI, tmp_path: Path
) -> None:
    teams = await cli("--json", "teams", "list", api=fake)
    assert teams.code == 0, teams.stderr
    team = next(t for t in teams.json() if t["name"] == "Research")
    assert team["id"] in (await cli("teams", "list", api=fake)).stdout

    set_limit = await cli(
        "--json",
        "capacity",
        "update",
        "--team-id",
        team["id"],
        "--gpu-type",
        "H100",
        "--max-gpus",
        "16",
        api=fake,
    )
    assert set_limit.code == 0, set_limit.stderr
    assert set_limit.json()["limit"] == 16
    got = await cli("--json", "capacity", "retrieve", api=fake)
    rows = got.json()["team_gpu_capacities"]
    assert any(r["team_id"] == team["id"] and r["limit"] == 16 for r in rows)

    fake.capacity = 0
    pid = await _project(fake, "q")
    spec = {
        "name": "s",
        "image": {"base_image": "x"},
        "compute": {"accelerator": {"accelerator": "H100", "count": 1}},
        "interactive_session": {"trigger": "on_startup"},
    }
    job = fake.add_job(pid, spec)
    queue = await cli("--json", "jobs", "queue-context", job.id, api=fake)
    assert queue.code == 0, queue.stderr
    assert queue.json()["target_job_id"] == job.id
    human = await cli("jobs", "queue-context", job.id, api=fake)
    assert "jobs were ahead at submission" in human.stderr

    spot = await cli("--json", "jobs", "update", "q", job.id, "--availability", "spot", api=fake)
    assert spot.code == 0, spot.stderr
    assert spot.json()["availability_model"] == "spot"
    nothing = await cli("jobs", "update", "q", job.id, api=fake)
    assert nothing.code == 2

    codes = await cli("--json", "sessions", "auth-codes", "q", job.id, api=fake)
    assert codes.code == 0, codes.stderr
    session_ids = [c["session_id"] for c in codes.json()]
    assert session_ids  # an on_startup session exists from the start
    extended = await cli(
        "--json",
        "sessions",
        "update",
        "q",
        job.id,
        session_ids[0],
        "--timeout-minutes",
        "30",
        api=fake,
    )
    assert extended.code == 0, extended.stderr
    key = tmp_path / "id.pub"
    key.write_text("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIB user@host\n")
    signed = await cli(
        "--json", "sessions", "sign-ssh-key", "q", job.id, "--public-key", str(key), api=fake
    )
    assert signed.code == 0, signed.stderr

    secret = await cli("artifacts", "upload-credentials", api=fake)
    assert secret.code == 2
    assert "--json" in secret.stderr
    shown = await cli("--json", "artifacts", "upload-credentials", api=fake)
    assert shown.code == 0, shown.stderr
    assert isinstance(shown.json(), dict)
