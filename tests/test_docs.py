"""Every ```python block of the docs, and of the README, runs against the fake server.

How the blocks are run:

- The blocks of one page run in order in one namespace, like the cells of a
  notebook. A block with a top-level ``await`` runs on an event loop kept for the
  whole page (so a client opened in one block can be used in the next); a block
  that calls ``asyncio.run(...)`` gets a loop of its own. Blocks run in a worker
  thread, so ``asyncio.run`` works, while the fake server runs on the test's loop.
- ``BASETEN_API_KEY`` and ``BASETEN_BASE_URL`` point at a `FakeTrainingAPI` whose
  clock runs ``TIME_SCALE`` times faster than real time, and so does the SDK's default
  clock (retry backoff, the 429 gate, ``wait`` and log polling). An
  example written for the real API (10 s status polls, 2 s log polls, jobs that run
  for minutes of fake time) runs unchanged and finishes in well under a second.
- Every zero-argument ``async def test_*`` function a block defines is called.
- An HTML comment on the line before a fence changes how it runs:
  ``<!-- no-test -->`` skips the block (keep it for output and fragments that
  cannot stand alone); ``<!-- pytest -->`` runs the block as a pytest test module
  in a subprocess, with the ``fake_api`` plugin enabled and ``asyncio_mode=auto``;
  ``<!-- integrations -->`` leaves the block to ``tests_integrations`` (it needs
  Airflow, Temporal, Prefect or Dagster, which this session does not install).
- Each page must finish within ``PAGE_TIMEOUT`` seconds.
"""

from __future__ import annotations

import ast
import asyncio
import concurrent.futures
import inspect
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from baseten_training_async._clock import set_clock
from baseten_training_async.testing import FakeClock, FakeTrainingAPI

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
GENERATED = {DOCS / "performance.md"}  # written by the benchmark run, not by hand
TIME_SCALE = 100.0
PAGE_TIMEOUT = 90.0
PYTEST_TIMEOUT = 120.0
SKIPPED_HERE = {"no-test", "integrations", "coordination"}
KNOWN_LANGUAGES = {"python", "bash", "console", "text", "toml", "json", "ini", "yaml"}

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<ticks>`{3,}|~{3,})[ \t]*(?P<info>[^\s`]*)[^`]*$")
_MARKER = re.compile(r"^\s*<!--\s*(?P<marker>no-test|pytest|integrations|coordination)\s*-->\s*$")


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    path: Path
    line: int  # 1-based line of the first line of code
    language: str
    source: str
    marker: str | None

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def fenced_blocks(path: Path) -> list[Block]:
    """Every fenced block of a Markdown file, with the marker before it, if any."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        indent, ticks = opening["indent"], opening["ticks"]
        previous = next((line for line in reversed(lines[:index]) if line.strip()), "")
        marker = _MARKER.match(previous)
        body: list[str] = []
        end = index + 1
        while end < len(lines) and not (
            lines[end].strip().startswith(ticks) and lines[end].strip().strip(ticks[0]) == ""
        ):
            text = lines[end]
            body.append(text[len(indent) :] if text.startswith(indent) else text.lstrip())
            end += 1
        blocks.append(
            Block(
                path=path,
                line=index + 2,
                language=opening["info"].lower(),
                source="\n".join(body) + "\n",
                marker=marker["marker"] if marker else None,
            )
        )
        index = end + 1
    return blocks


def _pages() -> list[Path]:
    pages = sorted(p for p in DOCS.rglob("*.md") if p not in GENERATED)
    return [*pages, ROOT / "README.md"]


def _python_pages() -> list[Path]:
    return [
        page
        for page in _pages()
        if any(b.language == "python" and b.marker not in SKIPPED_HERE for b in fenced_blocks(page))
    ]


# --------------------------------------------------------------------------- running


class ScaledClock:
    """Real time running ``scale`` times faster: sleeps are shortened, readings sped up.

    Made the SDK's default clock for a page, so every wait of every client the
    examples build (backoff, the 429 gate, ``wait`` and log polling) takes
    ``1/scale`` of its time, and deadlines pass at the pace of the fake's clock.
    """

    def __init__(self, scale: float) -> None:
        self.scale = scale
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return time.monotonic() * self.scale

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        await asyncio.sleep(max(0.0, seconds) / self.scale)


@pytest.fixture
def scaled_sdk_time() -> Iterator[ScaledClock]:
    """The SDK's default clock runs ``TIME_SCALE`` times faster; restored afterwards."""
    clock = ScaledClock(TIME_SCALE)
    previous = set_clock(clock)
    try:
        yield clock
    finally:
        assert set_clock(previous) is clock


def _run_pytest_block(block: Block, directory: Path) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "conftest.py").write_text(
        'pytest_plugins = ["baseten_training_async.testing.pytest_plugin"]\n'
    )
    (directory / "pytest.ini").write_text(
        "[pytest]\nasyncio_mode = auto\nasyncio_default_fixture_loop_scope = function\n"
        "filterwarnings = error\n"
    )
    (directory / "test_example.py").write_text(block.source)
    env = {k: v for k, v in os.environ.items() if not k.startswith("BASETEN_")}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(directory)],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=PYTEST_TIMEOUT,
        check=False,
    )
    if result.returncode != 0:
        raise AssertionError(f"{block.where}: pytest failed\n{result.stdout}\n{result.stderr}")


def _run_page(blocks: list[Block], scratch: Path) -> None:
    """Run a page's blocks in order, sharing one namespace and one event loop."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    loop = asyncio.new_event_loop()
    try:
        for number, block in enumerate(blocks):
            if block.marker == "pytest":
                _run_pytest_block(block, scratch / f"block{number}")
                continue
            # Leading newlines keep tracebacks pointing at the Markdown file's lines.
            source = "\n" * (block.line - 1) + block.source
            code = compile(source, str(block.path), "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
            before = set(namespace)
            if code.co_flags & inspect.CO_COROUTINE:
                loop.run_until_complete(eval(code, namespace))
            else:
                exec(code, namespace)
            for name, value in list(namespace.items()):
                if (
                    name.startswith("test_")
                    and name not in before
                    and inspect.iscoroutinefunction(value)
                    and not inspect.signature(value).parameters
                ):
                    loop.run_until_complete(value())
    finally:
        pending = asyncio.all_tasks(loop)
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.run_until_complete(loop.shutdown_default_executor())
        loop.close()


def _in_thread(blocks: list[Block], scratch: Path) -> concurrent.futures.Future[None]:
    done: concurrent.futures.Future[None] = concurrent.futures.Future()

    def target() -> None:
        try:
            _run_page(blocks, scratch)
        except BaseException as exc:
            done.set_exception(exc)
        else:
            done.set_result(None)

    threading.Thread(target=target, name="docs-examples", daemon=True).start()
    return done


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("page", _python_pages(), ids=lambda p: str(p.relative_to(ROOT)))
async def test_python_examples_run_against_the_fake(
    page: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, scaled_sdk_time: ScaledClock
) -> None:
    blocks = [
        b for b in fenced_blocks(page) if b.language == "python" and b.marker not in SKIPPED_HERE
    ]
    clock = FakeClock.real(speed=TIME_SCALE)
    async with FakeTrainingAPI(seed=1, clock=clock) as api:
        monkeypatch.setenv("BASETEN_API_KEY", api.api_key)
        monkeypatch.setenv("BASETEN_BASE_URL", api.url)
        await asyncio.wait_for(asyncio.wrap_future(_in_thread(blocks, tmp_path)), PAGE_TIMEOUT)


@pytest.mark.parametrize("page", _pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_code_fences_are_closed_and_labelled(page: Path) -> None:
    for block in fenced_blocks(page):
        assert block.language in KNOWN_LANGUAGES, f"{block.where}: fence {block.language!r}"
        if block.marker == "pytest":
            assert block.language == "python", f"{block.where}: pytest marker on non-Python"


def test_the_fence_parser_finds_blocks_and_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# T\n\n```python\nx = 1\n```\n\n<!-- no-test -->\n```text\nout\n```\n\n"
        "!!! note\n    ```python\n    y = 2\n    ```\n\n<!-- pytest -->\n```python\nz\n```\n"
    )
    blocks = fenced_blocks(page)
    assert [(b.line, b.language, b.source, b.marker) for b in blocks] == [
        (4, "python", "x = 1\n", None),
        (9, "text", "out\n", "no-test"),
        (14, "python", "y = 2\n", None),
        (19, "python", "z\n", "pytest"),
    ]


def test_every_guide_has_runnable_examples() -> None:
    runnable = set(_python_pages())
    for page in [
        DOCS / "index.md",
        DOCS / "quickstart.md",
        *sorted((DOCS / "guides").glob("*.md")),
    ]:
        # Blocks marked for another session (a real Redis, an orchestrator) run there.
        elsewhere = any(
            b.language == "python" and b.marker in ("integrations", "coordination")
            for b in fenced_blocks(page)
        )
        assert page in runnable or elsewhere, f"{page.relative_to(ROOT)} has no tested example"


def _cli_surface() -> dict[str, set[str]]:
    """Every command path of the command line, with the options it accepts."""
    import argparse

    from baseten_training_async.cli import build_parser

    surface: dict[str, set[str]] = {}

    def walk(parser: argparse.ArgumentParser, path: str) -> None:
        options = {
            option
            for action in parser._actions
            for option in action.option_strings
            if option.startswith("--")
        }
        surface[path] = options
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    walk(sub, f"{path} {name}".strip())

    walk(build_parser(), "")
    return surface


def test_the_cli_page_covers_every_command_and_option() -> None:
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    for path, options in _cli_surface().items():
        if path:
            assert f"baseten-training {path}" in page, f"cli.md does not show {path!r}"
        for option in options - {"--help"}:
            assert f"`{option}" in page or f"[{option}" in page, f"{path or 'global'}: {option}"


def test_every_test_the_docs_cite_exists() -> None:
    cited = {
        (match[1], match[2])
        for page in _pages()
        for match in re.finditer(r"(tests/[\w/]+\.py)::(\w+)", page.read_text(encoding="utf-8"))
    }
    assert cited, "the security page cites the tests that prove its guarantees"
    for path, name in sorted(cited):
        source = (ROOT / path).read_text(encoding="utf-8")
        assert re.search(rf"^(async )?def {name}\(", source, re.MULTILINE), f"{path}::{name}"
