"""The processes guide's worker script, run as written: a real Redis, the fake API.

``tests/test_docs.py`` runs the docs' other examples; blocks marked
``<!-- coordination -->`` need a Redis and run here.
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from baseten_training_async.testing import FakeTrainingAPI
from tests.coordination.conftest import RedisServer
from tests.test_docs import DOCS, fenced_blocks

PAGE = DOCS / "guides" / "processes.md"


async def test_the_worker_script_launches_each_name_once_from_three_workers(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    (block,) = [b for b in fenced_blocks(PAGE) if b.marker == "coordination"]
    async with FakeTrainingAPI(seed=3) as api:
        monkeypatch.setenv("BASETEN_API_KEY", api.api_key)
        monkeypatch.setenv("BASETEN_BASE_URL", api.url)
        monkeypatch.setenv("REDIS_URL", redis_server.url)
        monkeypatch.setenv("RUN_ID", f"docs-{os.getpid()}")
        namespace: dict[str, Any] = {"__name__": "processes_guide"}  # not "__main__"
        source = "\n" * (block.line - 1) + block.source
        exec(compile(source, str(PAGE), "exec", dont_inherit=True), namespace)
        # Three workers of the guide, at once, over the same list of names.
        await asyncio.wait_for(
            asyncio.gather(*(namespace["main"]() for _ in range(3))), timeout=120
        )
        names = Counter(job.spec.get("name") for job in api.jobs.values())
    assert len(names) == 300
    assert set(names.values()) == {1}, [n for n, c in names.items() if c > 1][:5]


def test_the_page_has_a_coordination_block() -> None:
    assert Path(PAGE).is_file()
    assert [b.marker for b in fenced_blocks(PAGE) if b.marker == "coordination"] == ["coordination"]
