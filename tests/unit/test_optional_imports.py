"""Importing the SDK imports none of its optional extras."""

from __future__ import annotations

import json
import subprocess
import sys

OPTIONAL = ("airflow", "temporalio", "rich", "redis", "prefect", "dagster")


def test_importing_the_package_imports_no_optional_extra() -> None:
    code = (
        "import json, sys\n"
        "import baseten_training_async\n"
        "from baseten_training_async import TrainingClient\n"
        f"optional = {OPTIONAL!r}\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in optional)))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert json.loads(result.stdout) == []
