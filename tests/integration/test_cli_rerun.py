"""Re-running an interrupted ``jobs create --count`` never makes a second job of a name.

The fake runs as its own process (``python -m baseten_training_async.testing``), like a
real API would, and the CLI is killed or interrupted mid-batch.
"""

from __future__ import annotations

import asyncio
import re
import shlex
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

from baseten_training_async import AsyncTrainingClient

from .test_cli import TIMEOUT, Result, _env, _finish, _spawn, cli

COUNT = 400
NAMES = [f"bulk-{i:04d}" for i in range(1, COUNT + 1)]
KEY = "fake-api-key"
# A rate limit on the fake slows the batch down enough to interrupt it midway.
BATCH = (
    "--max-retries",
    "10",
    "jobs",
    "create",
    "rerun",
    "--image",
    "hello-world",
    "--name",
    "bulk",
    "--count",
    str(COUNT),
    "--concurrency",
    "8",
)


@dataclass
class Server:
    url: str
    proc: asyncio.subprocess.Process


@pytest.fixture
async def server() -> AsyncIterator[Server]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "baseten_training_async.testing",
        "--port",
        "0",
        "--rate-limit",
        "150",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=_env(),
    )
    try:
        assert proc.stdout is not None
        banner = (await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)).decode()
        match = re.search(r"http://127\.0\.0\.1:\d+", banner)
        assert match, banner
        async with AsyncTrainingClient(KEY, base_url=match.group(0)) as client:
            await client.projects.upsert("rerun")
        yield Server(match.group(0), proc)
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), TIMEOUT)


async def _names_on_server(server: Server) -> Counter[str]:
    async with AsyncTrainingClient(KEY, base_url=server.url) as client:
        (project,) = [p for p in await client.projects.list() if p.name == "rerun"]
        return Counter(job.name or "" for job in await client.jobs.list(project.id))


async def _start_batch(
    server: Server, *before: str, after: tuple[str, ...] = ()
) -> asyncio.subprocess.Process:
    env = _env(BASETEN_BASE_URL=server.url, BASETEN_API_KEY=KEY)
    proc = await _spawn(*before, *BATCH, *after, env=env)
    assert proc.stderr is not None
    # Plain progress goes to stderr at every tenth: wait until a fifth is done.
    while True:
        line = (await asyncio.wait_for(proc.stderr.readline(), TIMEOUT)).decode()
        assert line, "the batch ended before it was interrupted"
        match = re.match(r"creating jobs: (\d+)/", line)
        if match and int(match.group(1)) >= COUNT // 5:
            return proc


async def _rerun(server: Server, argv: list[str] | None = None) -> Result:
    env = _env(BASETEN_BASE_URL=server.url, BASETEN_API_KEY=KEY)
    return await cli(*(argv if argv is not None else BATCH), env=env, timeout=120)


def _assert_exactly_once(names: Counter[str]) -> None:
    assert sorted(names) == NAMES
    assert set(names.values()) == {1}, {n: c for n, c in names.items() if c > 1}


async def test_sigkill_mid_batch_then_the_same_command_makes_exactly_400(
    server: Server,
) -> None:
    proc = await _start_batch(server)
    proc.kill()
    await asyncio.wait_for(proc.wait(), TIMEOUT)
    assert proc.returncode == -signal.SIGKILL
    before = await _names_on_server(server)
    assert 0 < sum(before.values()) < COUNT, "the kill did not land mid-batch"

    again = await _rerun(server)
    assert again.code == 0, again.stderr
    _assert_exactly_once(await _names_on_server(server))
    adopted = re.search(r"created (\d+) of 400 jobs \((\d+) already existed", again.stderr)
    assert adopted, again.stderr
    assert int(adopted.group(1)) + int(adopted.group(2)) == COUNT
    assert int(adopted.group(2)) == sum(before.values())


async def test_sigint_prints_counts_and_the_resume_command(server: Server) -> None:
    proc = await _start_batch(server)
    proc.send_signal(signal.SIGINT)
    result = await _finish(proc)
    assert result.code == 130
    assert "Traceback" not in result.stderr
    assert "starting no more creates" in result.stderr
    final = result.stderr.strip().splitlines()[-1]
    match = re.match(
        r"interrupted: (\d+) of 400 jobs created or adopted, (\d+) failed, (\d+) unknown.*"
        r"resume with: (baseten-training .*jobs create .*)$",
        final,
    )
    assert match, result.stderr
    created, unknown = int(match.group(1)), int(match.group(3))
    assert unknown == 0  # the first Ctrl-C lets creates in flight finish
    assert 0 < created < COUNT
    assert sum((await _names_on_server(server)).values()) == created

    resume = shlex.split(match.group(4))[1:]
    assert "--no-adopt" not in resume
    again = await _rerun(server, resume)
    assert again.code == 0, again.stderr
    _assert_exactly_once(await _names_on_server(server))


async def test_second_sigint_abandons_creates_in_flight_and_says_how_many(
    server: Server,
) -> None:
    proc = await _start_batch(server, "--json")
    proc.send_signal(signal.SIGINT)
    await asyncio.sleep(0.05)
    if proc.returncode is None:
        proc.send_signal(signal.SIGINT)
    result = await _finish(proc)
    assert result.code == 130, result.stderr
    assert re.search(r"\d+ unknown \(those creates may have started jobs\)", result.stderr) or (
        "0 unknown" in result.stderr  # the creates in flight finished before the second Ctrl-C
    )
    assert "resume with: baseten-training" in result.stderr
    for line in result.stdout.splitlines():
        assert line.startswith("{"), line  # stdout stays JSON lines, notes go to stderr
    again = await _rerun(server)
    assert again.code == 0, again.stderr
    _assert_exactly_once(await _names_on_server(server))


async def test_no_adopt_is_dropped_from_the_resume_command(server: Server) -> None:
    proc = await _start_batch(server, "--api-key", KEY, after=("--no-adopt",))
    proc.send_signal(signal.SIGINT)
    result = await _finish(proc)
    assert result.code == 130
    final = result.stderr.strip().splitlines()[-1]
    assert "--no-adopt" not in final
    assert "--api-key $BASETEN_API_KEY" in final  # the key is never echoed
    assert "fake-api-key" not in final
