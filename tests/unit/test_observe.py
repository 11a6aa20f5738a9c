"""Logging switches and the optional OpenTelemetry import."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from baseten_training_async import AsyncTrainingClient, InvalidInputError
from tests.conftest import BASE, KEY

_SCRIPT = textwrap.dedent(
    """
    import asyncio, logging, sys
    {setup}
    from baseten_training_async import AsyncTrainingClient
    from baseten_training_async.testing import MockTransport, json_response

    replies = [
        json_response(503, {{"message": "busy"}}),
        json_response(200, {{"training_projects": []}}),
    ]
    transport = MockTransport(lambda request: replies.pop(0))

    async def main():
        async with AsyncTrainingClient("{key}", transport=transport) as client:
            await client.projects.list()

    asyncio.run(main())
    print(sorted(m for m in sys.modules if m.split(".")[0] in ("opentelemetry", "rich")))
    """
)


def _run(setup: str = "", **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BASETEN_")}
    environ.update(env)
    script = _SCRIPT.format(setup=setup, key=KEY)
    return subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


def test_baseten_log_info_prints_the_retry_only() -> None:
    result = _run(BASETEN_LOG="info")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert "INFO retrying GET /v1/training_projects: attempt 1 failed" in lines[0]
    assert "503" in lines[0]
    # Neither the otel extra nor the cli extra was imported.
    assert result.stdout.strip() == "[]"


def test_baseten_log_debug_adds_request_and_response_lines_without_the_key() -> None:
    result = _run(BASETEN_LOG="debug")
    assert result.returncode == 0, result.stderr
    debug = [line for line in result.stderr.splitlines() if " DEBUG " in line]
    assert [line.split(" DEBUG ")[1].split(" in ")[0] for line in debug] == [
        "request GET /v1/training_projects (attempt 1)",
        "response GET /v1/training_projects 503",
        "request GET /v1/training_projects (attempt 2)",
        "response GET /v1/training_projects 200",
    ]
    assert KEY not in result.stderr


def test_a_program_that_configured_logging_keeps_its_own_handler() -> None:
    setup = "logging.basicConfig(format='mine: %(levelname)s %(message)s', stream=sys.stderr)"
    result = _run(setup, BASETEN_LOG="info")
    assert result.returncode == 0, result.stderr
    (line,) = result.stderr.splitlines()  # printed once, in the program's format
    assert line.startswith("mine: INFO retrying GET")


def test_no_baseten_log_means_no_output() -> None:
    result = _run()
    assert result.returncode == 0
    assert result.stderr == ""


def test_tracing_without_opentelemetry(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # as if the extra is missing
    monkeypatch.delenv("BASETEN_TRACING", raising=False)
    assert AsyncTrainingClient(KEY, base_url=BASE).base_url == BASE  # default: off quietly
    with pytest.raises(InvalidInputError, match="otel") as info:
        AsyncTrainingClient(KEY, base_url=BASE, tracing=True)
    assert info.value.field == "tracing"
    monkeypatch.setenv("BASETEN_TRACING", "1")  # opting in from the environment
    with pytest.raises(InvalidInputError, match="otel"):
        AsyncTrainingClient(KEY, base_url=BASE)
    assert AsyncTrainingClient(KEY, base_url=BASE, tracing=False).base_url == BASE
