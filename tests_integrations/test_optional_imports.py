"""The integrations are installed here, and still not imported by the SDK itself."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

EXTRAS = ("airflow", "temporalio")


def _imported_after(statement: str) -> list[str]:
    code = (
        "import json, sys\n"
        f"{statement}\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({EXTRAS!r}))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    imported: list[str] = json.loads(result.stdout.splitlines()[-1])
    return imported


def test_importing_the_sdk_imports_neither_airflow_nor_temporal() -> None:
    for extra in EXTRAS:
        assert importlib.util.find_spec(extra) is not None, f"{extra} is installed here"
    assert _imported_after("import baseten_training_async, baseten_training_async.contrib") == []
    assert _imported_after("from baseten_training_async import TrainingClient") == []


def test_each_integration_imports_only_its_own_framework() -> None:
    assert _imported_after("import baseten_training_async.contrib.temporal") == ["temporalio"]
    assert _imported_after("import baseten_training_async.contrib.airflow") == ["airflow"]
