"""The Airflow operator, trigger and hook against the fake.

Two harnesses: the operator's own protocol driven in-process (``execute`` raises
``TaskDeferred``; the trigger is rebuilt from ``serialize()`` and its ``run()``
iterated as the triggerer does; ``execute_complete`` gets the event), and
``dag.test()`` on a real Airflow metadata database, in a subprocess.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from airflow.sdk import DAG, Connection
from airflow.sdk.exceptions import AirflowException, TaskDeferred
from airflow.triggers.base import TriggerEvent

from baseten_training_async import JobStatus
from baseten_training_async.contrib.airflow import (
    BasetenTrainingHook,
    BasetenTrainingJobOperator,
    BasetenTrainingJobTrigger,
    get_provider_info,
)
from baseten_training_async.testing import FakeTrainingAPI, Route

from .conftest import AIRFLOW_HOME, SPEC

DAGS = Path(__file__).parent / "airflow_dags"
DAG_TEST_TIMEOUT = 240.0


@pytest.fixture(autouse=True)
def connection(api: FakeTrainingAPI, monkeypatch: pytest.MonkeyPatch) -> str:
    value = json.dumps({"conn_type": "baseten", "password": api.api_key, "host": api.url})
    monkeypatch.setenv("AIRFLOW_CONN_BASETEN_DEFAULT", value)
    return value


def _operator(**options: Any) -> BasetenTrainingJobOperator:
    with DAG("direct", schedule=None):
        kwargs: dict[str, Any] = {"project_name": "airflow", "spec": SPEC, "poll_interval": 0.02}
        return BasetenTrainingJobOperator(task_id="train", **{**kwargs, **options})


def _context(run_id: str = "manual__2026-01-01") -> Any:
    return {"run_id": run_id, "ti": SimpleNamespace(map_index=-1)}


async def _defer(operator: BasetenTrainingJobOperator, context: Any) -> TaskDeferred:
    # execute() is sync code that blocks (a worker runs it): keep the fake's loop free.
    with pytest.raises(TaskDeferred) as deferred:
        await asyncio.to_thread(operator.execute, context)
    return deferred.value


async def _fire(trigger: Any) -> TriggerEvent:
    """What the triggerer does: rebuild the trigger from its serialized form and run it."""
    classpath, kwargs = trigger.serialize()
    module, _, name = classpath.rpartition(".")
    rebuilt = getattr(importlib.import_module(module), name)(**kwargs)
    events = [event async for event in rebuilt.run()]
    assert len(events) == 1
    event: TriggerEvent = events[0]
    return event


# --------------------------------------------------------------------------- operator


async def test_the_task_defers_and_resumes_with_the_completed_job(api: FakeTrainingAPI) -> None:
    operator = _operator()
    context = _context()
    deferred = await _defer(operator, context)
    assert deferred.method_name == "execute_complete"
    assert isinstance(deferred.trigger, BasetenTrainingJobTrigger)
    (job,) = api.jobs.values()
    assert job.name == "direct.manual__2026-01-01.train"
    event = await _fire(deferred.trigger)
    result = await asyncio.to_thread(operator.execute_complete, context, event=event.payload)
    assert result["id"] == job.id
    assert result["current_status"] == JobStatus.COMPLETED


async def test_a_failed_job_fails_the_task_with_its_error(api: FakeTrainingAPI) -> None:
    operator = _operator(job_name="will-fail")
    deferred = await _defer(operator, _context())
    event = await _fire(deferred.trigger)
    assert event.payload["status"] == "done"
    with pytest.raises(AirflowException, match="TRAINING_JOB_FAILED: Fake failure"):
        operator.execute_complete(_context(), event=event.payload)


async def test_a_retried_task_adopts_its_job(api: FakeTrainingAPI) -> None:
    first = await _defer(_operator(), _context())
    retried = await _defer(_operator(), _context())  # a new try of the same task and run
    assert retried.trigger.job_id == first.trigger.job_id
    assert len(api.jobs) == 1
    assert len(api.requests_for(Route.CREATE_JOB)) == 1
    other_run = await _defer(_operator(), _context("manual__2026-01-02"))
    assert other_run.trigger.job_id != first.trigger.job_id
    assert len(api.jobs) == 2


async def test_a_timed_out_wait_stops_the_job_and_fails(api: FakeTrainingAPI) -> None:
    operator = _operator(job_name="stuck", wait_timeout=0.2)
    deferred = await _defer(operator, _context())
    job_id = deferred.trigger.job_id
    api.force_status(job_id, JobStatus.RUNNING)
    event = await _fire(deferred.trigger)
    assert event.payload["status"] == "timeout"
    with pytest.raises(AirflowException, match="did not finish in time"):
        await asyncio.to_thread(operator.execute_complete, _context(), event=event.payload)
    assert len(api.requests_for(Route.STOP_JOB)) == 1
    assert api.jobs[job_id].stopped_at is not None


async def test_on_kill_stops_the_job(api: FakeTrainingAPI) -> None:
    operator = _operator()
    deferred = await _defer(operator, _context())
    await asyncio.to_thread(operator.on_kill)
    assert api.jobs[deferred.trigger.job_id].stopped_at is not None
    keep = _operator(stop_on_kill=False, job_name="keep")
    kept = await _defer(keep, _context())
    await asyncio.to_thread(keep.on_kill)
    assert api.jobs[kept.trigger.job_id].stopped_at is None


async def test_the_trigger_on_kill_stops_the_deferred_job(api: FakeTrainingAPI) -> None:
    deferred = await _defer(_operator(), _context())
    api.force_status(deferred.trigger.job_id, JobStatus.RUNNING)
    await deferred.trigger.on_kill()
    assert api.jobs[deferred.trigger.job_id].stopped_at is not None


async def test_not_deferrable_waits_in_the_worker_and_forwards_logs(
    api: FakeTrainingAPI, capsys: pytest.CaptureFixture[str]
) -> None:
    operator = _operator(deferrable=False, forward_logs=True)
    result = await asyncio.to_thread(operator.execute, _context())
    assert result["current_status"] == JobStatus.COMPLETED
    assert "Training completed successfully" in capsys.readouterr().out  # Airflow logs to stdout


async def test_the_trigger_reports_an_unreachable_api_as_an_error(
    api: FakeTrainingAPI, monkeypatch: pytest.MonkeyPatch
) -> None:
    deferred = await _defer(_operator(), _context())
    bad = json.dumps({"conn_type": "baseten", "password": "wrong-key", "host": api.url})
    monkeypatch.setenv("AIRFLOW_CONN_BASETEN_DEFAULT", bad)
    event = await _fire(deferred.trigger)
    assert event.payload["status"] == "error"
    assert "AuthenticationError" in event.payload["message"]
    with pytest.raises(AirflowException, match="AuthenticationError"):
        _operator().execute_complete(_context(), event=event.payload)


def test_operator_arguments_are_checked() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        _operator(project_id="p")
    assert set(BasetenTrainingJobOperator.template_fields) >= {"spec", "job_name"}


# --------------------------------------------------------------------------- hook


@pytest.mark.parametrize(
    ("fields", "base_url"),
    [
        ({"host": "http://127.0.0.1:8000"}, "http://127.0.0.1:8000"),
        ({"host": "127.0.0.1", "port": 8000, "schema": "http"}, "http://127.0.0.1:8000"),
        ({"host": "api.example.com"}, "https://api.example.com"),
        ({"extra": json.dumps({"base_url": "https://other.example"})}, "https://other.example"),
        ({}, "https://api.baseten.co"),
    ],
)
def test_the_hook_reads_key_and_base_url_from_the_connection(
    fields: dict[str, Any], base_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    connection = Connection(conn_id="c", conn_type="baseten", password="sk-test", **fields)
    monkeypatch.setenv("AIRFLOW_CONN_C", connection.as_json())
    with BasetenTrainingHook("c", timeout=7).get_conn() as client:
        assert client.base_url == base_url
        assert client.timeout == 7
    assert BasetenTrainingHook.conn_type == "baseten"
    info = get_provider_info()
    assert info["connection-types"] == [
        {
            "hook-class-name": "baseten_training_async.contrib.airflow.BasetenTrainingHook",
            "connection-type": "baseten",
        }
    ]


# --------------------------------------------------------------------------- dag.test()


@pytest.fixture(scope="session")
def airflow_db() -> dict[str, str]:
    env = {
        **os.environ,
        "AIRFLOW_HOME": AIRFLOW_HOME,
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__UNIT_TEST_MODE": "True",
    }
    airflow = str(Path(sys.executable).parent / "airflow")
    subprocess.run(
        [airflow, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300
    )
    return env


_RUN_DAG = """
import json, sys
sys.path.insert(0, sys.argv[1])
from training_dag import dag
run = dag.test()
print("RESULT " + json.dumps({
    "state": str(run.state),
    "tasks": {f"{ti.task_id}[{ti.map_index}]": [str(ti.state), ti.try_number]
              for ti in run.get_task_instances()},
}))
"""


async def test_dag_test_runs_the_operator_end_to_end(
    api: FakeTrainingAPI, airflow_db: dict[str, str], connection: str
) -> None:
    project = api.add_project("airflow")
    stuck = api.add_job(project.id, {**SPEC, "name": "stuck"})
    api.force_status(stuck.id, JobStatus.RUNNING)
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _RUN_DAG,
        str(DAGS),
        env={**airflow_db, "AIRFLOW_CONN_BASETEN_DEFAULT": connection},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await asyncio.wait_for(process.communicate(), DAG_TEST_TIMEOUT)
    text = output.decode(errors="replace")
    result_lines = [line for line in text.splitlines() if line.startswith("RESULT ")]
    assert result_lines, text[-5000:]
    result = json.loads(result_lines[-1].removeprefix("RESULT "))
    print(f"\ndag.test() took {time.monotonic() - started:.1f} s")
    tasks = result["tasks"]
    assert tasks["train[-1]"] == ["success", 1], text[-8000:]
    assert tasks["train_fail[-1]"] == ["failed", 2]  # retried once, and failed again
    assert tasks["train_stuck[-1]"][0] == "failed"
    assert tasks["sweep[0]"] == ["success", 1]
    assert tasks["sweep[1]"] == ["success", 1]
    names = sorted(str(job.name) for job in api.jobs.values())
    run_prefix = next(n for n in names if n.endswith(".train")).removesuffix(".train")
    assert names == sorted(
        [
            f"{run_prefix}.train",
            f"{run_prefix}.sweep.0",
            f"{run_prefix}.sweep.1",
            "stuck",
            "will-fail",
        ]
    )  # the retry of train_fail adopted its job: one "will-fail"
    assert api.jobs[stuck.id].stopped_at is not None  # stopped when the wait timed out
    assert "Training completed successfully" in text  # forwarded job logs
    assert "TRAINING_JOB_FAILED: Fake failure" in text  # the task failed with the job's error
