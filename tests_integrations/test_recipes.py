"""The docs' examples that need an orchestrator, run against the fake.

``tests/test_docs.py`` runs every other Python block of the docs; blocks marked
``<!-- integrations -->`` need Airflow, Temporal, Prefect or Dagster and run here,
with the page's other blocks, in order, in one namespace.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from baseten_training_async.testing import FakeClock
from tests.test_docs import DOCS, ROOT, TIME_SCALE, fenced_blocks
from tests.test_docs import scaled_sdk_time as scaled_sdk_time  # the SDK's waits, sped up
from tests.unit.test_sync import ThreadedFake

PAGES = sorted(
    page
    for page in DOCS.rglob("*.md")
    if any(block.marker == "integrations" for block in fenced_blocks(page))
)


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> Iterator[ThreadedFake]:
    served = ThreadedFake(seed=2, clock=FakeClock.real(speed=TIME_SCALE))
    monkeypatch.setenv("BASETEN_API_KEY", served.api.api_key)
    monkeypatch.setenv("BASETEN_BASE_URL", served.api.url)
    yield served
    served.close()


def test_the_recipes_are_found() -> None:
    names = {page.relative_to(DOCS).as_posix() for page in PAGES}
    assert {"recipes/prefect.md", "recipes/dagster.md", "guides/orchestration.md"} <= names
    for module in ("prefect", "dagster", "airflow", "temporalio"):
        assert importlib.util.find_spec(module) is not None, f"{module} is installed here"


@pytest.mark.usefixtures("scaled_sdk_time")
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_integration_examples_run_against_the_fake(page: Path, fake: ThreadedFake) -> None:
    blocks = [b for b in fenced_blocks(page) if b.language == "python" and b.marker != "no-test"]
    namespace: dict[str, Any] = {"__name__": "__main__"}
    with warnings.catch_warnings():
        # The frameworks' own deprecation notices are theirs to fix, not failures here.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        for block in blocks:
            source = "\n" * (block.line - 1) + block.source
            # dont_inherit: this module's `from __future__ import annotations` is not the page's.
            exec(compile(source, str(block.path), "exec", dont_inherit=True), namespace)
    assert fake.api.requests, f"{page.name}: the examples talked to the API"
