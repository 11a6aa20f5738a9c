"""Integrations with orchestrators, each behind an extra of its own.

- `baseten_training_async.contrib.airflow` (``pip install 'baseten-training-async[airflow]'``):
  a hook, a deferrable operator and its trigger, for Airflow 3.
- `baseten_training_async.contrib.temporal` (``pip install 'baseten-training-async[temporal]'``):
  activities to create, wait for and stop training jobs.

Importing ``baseten_training_async`` imports none of them.
"""
