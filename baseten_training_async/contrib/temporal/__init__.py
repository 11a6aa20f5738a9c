"""Temporal activities for training jobs (extra ``temporal``).

A worker registers the activities of one `TrainingActivities`; workflows call
them by method. Creating is exactly once across Temporal's retries (the job is
named after the workflow and activity ids and adopted on retry), waiting
heartbeats the job's status and resumes from it, and stopping is idempotent::

    from temporalio.worker import Worker

    from baseten_training_async import AsyncTrainingClient
    from baseten_training_async.contrib.temporal import API_RATE_LIMIT, TrainingActivities

    activities = TrainingActivities(AsyncTrainingClient())
    worker = Worker(
        temporal_client,
        task_queue="training",
        activities=activities.all(),
        max_task_queue_activities_per_second=API_RATE_LIMIT,
    )
"""

from ._activities import (
    API_RATE_LIMIT,
    CreateJobInput,
    JobResult,
    StopJobInput,
    TrainingActivities,
    WaitJobInput,
)

__all__ = [
    "API_RATE_LIMIT",
    "CreateJobInput",
    "JobResult",
    "StopJobInput",
    "TrainingActivities",
    "WaitJobInput",
]
