"""Airflow 3 integration (extra ``airflow``): a hook, a deferrable operator and its trigger.

Create a connection of type ``baseten`` whose password is the API key, then::

    from baseten_training_async.contrib.airflow import BasetenTrainingJobOperator

    train = BasetenTrainingJobOperator(
        task_id="train",
        project_name="llama-sft",
        spec={"image": {"base_image": "pytorch/pytorch:2.4.0-cuda12.4-cudnn9-runtime"}},
        retries=2,
    )
"""

from typing import Any

from ._hook import BasetenTrainingHook
from ._operator import BasetenTrainingJobOperator
from ._trigger import BasetenTrainingJobTrigger

__all__ = [
    "BasetenTrainingHook",
    "BasetenTrainingJobOperator",
    "BasetenTrainingJobTrigger",
    "get_provider_info",
]


def get_provider_info() -> dict[str, Any]:
    """What Airflow's providers manager reads: the ``baseten`` connection type."""
    from baseten_training_async import __version__

    return {
        "package-name": "baseten-training-async",
        "name": "Baseten Training",
        "description": "Run Baseten training jobs from Airflow.",
        "versions": [__version__],
        "connection-types": [
            {
                "hook-class-name": f"{__name__}.BasetenTrainingHook",
                "connection-type": BasetenTrainingHook.conn_type,
            }
        ],
    }
