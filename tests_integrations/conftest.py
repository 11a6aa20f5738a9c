from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import AsyncIterator

import pytest

from baseten_training_async import AsyncTrainingClient, RetryPolicy
from baseten_training_async.testing import FakeClock, FakeTrainingAPI, JobTimings

# Airflow, Prefect and Dagster read their homes at import: never the user's, always
# scratch directories (Prefect's temporary server keeps its database there).
AIRFLOW_HOME = tempfile.mkdtemp(prefix="airflow-home-")
PREFECT_HOME = tempfile.mkdtemp(prefix="prefect-home-")
DAGSTER_HOME = tempfile.mkdtemp(prefix="dagster-home-")
for _home in (AIRFLOW_HOME, PREFECT_HOME, DAGSTER_HOME):
    atexit.register(shutil.rmtree, _home, ignore_errors=True)
os.environ["AIRFLOW_HOME"] = AIRFLOW_HOME
os.environ["PREFECT_HOME"] = PREFECT_HOME
os.environ["DAGSTER_HOME"] = DAGSTER_HOME
with open(os.path.join(DAGSTER_HOME, "dagster.yaml"), "w") as _config:
    _config.write("telemetry:\n  enabled: false\n")
# Prefect's temporary server: no usage reports sent out (tests stay on loopback), and
# time to start on a busy machine.
os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] = "false"
os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"] = "180"
os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "False"
os.environ["AIRFLOW__CORE__UNIT_TEST_MODE"] = "True"

FAST_RETRIES = RetryPolicy(max_retries=4, initial_backoff=0.01, max_backoff=0.05)
SPEC = {"image": {"base_image": "hello-world"}}


@pytest.fixture
async def api() -> AsyncIterator[FakeTrainingAPI]:
    # Each phase of a job lasts 50 ms of real time: created, deploying, running.
    async with FakeTrainingAPI(
        seed=11,
        clock=FakeClock.real(speed=20.0),
        timings=JobTimings(created=1, deploying=1, running=1),
    ) as fake:
        yield fake


@pytest.fixture
async def client(api: FakeTrainingAPI) -> AsyncIterator[AsyncTrainingClient]:
    async with AsyncTrainingClient(
        api.api_key, base_url=api.url, retry_policy=FAST_RETRIES, timeout=2
    ) as c:
        yield c
