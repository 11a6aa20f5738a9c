"""One fake-server command line: ``baseten-training fake-server`` and ``python -m ...testing``."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys

import aiohttp
import pytest

TIMEOUT = 30.0
FAKE_FLAGS = {
    "--host",
    "--port",
    "--seed",
    "--rate-limit",
    "--rate-burst",
    "--capacity",
    "--speed",
    "--job-seconds",
}
ENV = {k: v for k, v in os.environ.items() if not k.startswith("BASETEN_")} | {"NO_COLOR": "1"}


def flags_in_help(*module_and_args: str) -> set[str]:
    result = subprocess.run(
        [sys.executable, "-m", *module_and_args, "--help"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        env=ENV,
        check=True,
    )
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", result.stdout))


def test_both_command_lines_take_the_same_server_flags() -> None:
    standalone = flags_in_help("baseten_training_async.testing")
    cli = flags_in_help("baseten_training_async", "fake-server")
    assert standalone - {"--help"} == FAKE_FLAGS | {"--api-key"}
    assert FAKE_FLAGS | {"--api-key"} <= cli  # --api-key is the CLI's global option there


@pytest.mark.parametrize(
    "command",
    [
        ("baseten_training_async", "fake-server"),
        ("baseten_training_async.testing",),
    ],
)
async def test_capacity_and_rate_burst_work_from_either_command(command: tuple[str, ...]) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        *command,
        "--port",
        "0",
        "--api-key",
        "standalone-key",
        "--capacity",
        "1",
        "--rate-limit",
        "1",
        "--rate-burst",
        "3",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=ENV,
    )
    try:
        assert proc.stdout is not None
        banner = await asyncio.wait_for(proc.stdout.readline(), TIMEOUT)
        match = re.search(r"(http://127\.0\.0\.1:\d+)", banner.decode())
        assert match, banner
        headers = {"Authorization": "Api-Key standalone-key"}
        async with aiohttp.ClientSession(match.group(1), headers=headers) as http:
            statuses = []
            jobs = []
            async with http.post(
                "/v1/training_projects", json={"training_project": {"name": "p"}}
            ) as response:
                statuses.append(response.status)
                project = (await response.json())["training_project"]["id"]
            for _ in range(2):
                async with http.post(
                    f"/v1/training_projects/{project}/jobs",
                    json={"training_job": {"image": {"base_image": "x"}}},
                ) as response:
                    statuses.append(response.status)
                    jobs.append((await response.json())["training_job"]["current_status"])
            async with http.get("/v1/training_projects") as response:
                statuses.append(response.status)
        # A burst of 3 at 1 request/s: the 4th request in a row is limited.
        assert statuses == [200, 200, 200, 429]
        # Capacity 1: the second job waits.
        assert jobs[1] == "TRAINING_JOB_PENDING"
        assert jobs[0] != "TRAINING_JOB_PENDING"
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), TIMEOUT)
    assert proc.returncode == 0
