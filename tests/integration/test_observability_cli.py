"""``BASETEN_LOG`` and the CLI's ``--verbose``/``--debug``, in real subprocesses."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import pytest

TIMEOUT = 60.0
KEY = "sk-log-test-0123456789"


def _refused_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"  # nothing listens there once the socket is closed


def _run(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("BASETEN_")}
    environ.update({"NO_COLOR": "1", "BASETEN_API_KEY": KEY, **env})
    return subprocess.run(
        [sys.executable, "-m", "baseten_training_async", *args],
        capture_output=True,
        text=True,
        env=environ,
        timeout=TIMEOUT,
        check=False,
    )


def _retry_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "retrying GET /v1/training_projects" in line]


@pytest.mark.parametrize("how", ["env", "verbose"])
def test_each_retry_against_a_refused_port_is_printed(how: str) -> None:
    args = ["--base-url", _refused_url(), "--max-retries", "3", "projects", "list"]
    result = _run(*args, BASETEN_LOG="info") if how == "env" else _run("--verbose", *args)
    assert result.returncode == 5
    lines = result.stderr.splitlines()
    retries = _retry_lines(result.stderr)
    assert [re.search(r"attempt (\d) failed", line)[1] for line in retries] == ["1", "2", "3"]  # type: ignore[index]
    assert all(" INFO " in line and "could not connect" in line for line in retries)
    # Printed as they happen: every retry line comes before the final error line.
    assert lines[-1].startswith("error: connection error:")
    assert lines.index(retries[-1]) < len(lines) - 1
    assert "DEBUG" not in result.stderr
    assert KEY not in result.stderr


def test_debug_adds_request_lines_and_tracebacks() -> None:
    result = _run("--debug", "--base-url", _refused_url(), "--max-retries", "1", "projects", "list")
    assert result.returncode == 5
    assert len(_retry_lines(result.stderr)) == 1
    requests = [line for line in result.stderr.splitlines() if " DEBUG " in line]
    assert any("request GET /v1/training_projects (attempt 2)" in line for line in requests)
    assert any("failed GET /v1/training_projects" in line for line in requests)
    assert "Traceback" in result.stderr
    assert KEY not in result.stderr


def test_without_baseten_log_nothing_is_printed_but_the_error() -> None:
    result = _run("--base-url", _refused_url(), "--max-retries", "1", "projects", "list")
    assert result.returncode == 5
    assert len(result.stderr.splitlines()) == 1
