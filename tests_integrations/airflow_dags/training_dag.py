"""The DAG that tests_integrations/test_airflow.py runs with ``dag.test()``."""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG

from baseten_training_async.contrib.airflow import BasetenTrainingJobOperator

SPEC = {"image": {"base_image": "hello-world"}}

with DAG("baseten_training", schedule=None, start_date=pendulum.datetime(2026, 1, 1)) as dag:
    # Defers, forwards the job's logs into the task log, resumes on completion.
    BasetenTrainingJobOperator(
        task_id="train", project_name="airflow", spec=SPEC, poll_interval=0.02, forward_logs=True
    )
    # The fake fails jobs whose name contains "fail"; the retry adopts the failed job.
    BasetenTrainingJobOperator(
        task_id="train_fail",
        project_name="airflow",
        spec=SPEC,
        job_name="will-fail",
        poll_interval=0.02,
        retries=1,
        retry_delay=timedelta(0),
    )
    # Adopts a job the test made beforehand and pinned RUNNING; times out and stops it.
    BasetenTrainingJobOperator(
        task_id="train_stuck",
        project_name="airflow",
        spec=SPEC,
        job_name="stuck",
        poll_interval=0.02,
        wait_timeout=timedelta(seconds=1),
    )
    # One job per map index.
    BasetenTrainingJobOperator.partial(
        task_id="sweep", project_name="airflow", poll_interval=0.02
    ).expand(spec=[SPEC, SPEC])
