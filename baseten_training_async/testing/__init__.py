"""An in-memory fake of the Baseten Training API for tests, demos and benchmarks.

`FakeTrainingAPI` serves every operation of the training API's OpenAPI spec (bundled
as ``openapi.json``) from memory over real HTTP on localhost, so an SDK is exercised
through its real transport::

    from baseten_training_async.testing import FakeTrainingAPI, Route

    async with FakeTrainingAPI(seed=1) as api:
        api.inject("drop_after_commit", route=Route.CREATE_JOB, times=1)
        ...  # point a client at api.url with api.api_key

Behaviour in brief:

- Auth: ``Authorization: Api-Key <key>`` or ``Bearer <key>``, else 401.
- Request bodies are validated against the spec like the real API does: missing
  required fields, type errors and out-of-range values are 400s whose ``message``
  names the field (``training_job.compute.node_count: ...``); unknown fields are
  accepted (and kept in the request log), ``null`` stands for "absent" in any
  optional field; bodies over 16 MiB get 413, a wrong method 405. The fake never
  answers a 5xx it was not told to inject.
- Projects upsert by name; job creation and recreation always create a new job.
- Job status is computed from a `FakeClock`: CREATED -> DEPLOYING -> RUNNING -> the
  outcome (COMPLETED, or FAILED by rule; PREEMPTED under a ``preemption`` fault),
  PENDING while over ``capacity``. Running jobs save a checkpoint every fifth step.
- Logs: nanosecond string timestamps, inclusive millisecond windows, ``limit``
  1..1000 (default 500), windows up to 7 days, ``direction`` default ``asc``.
- Checkpoint files: ``page_size``/``page_token`` offsets, ``next_page_token`` null
  at the end.
- Errors are ``{"message": ...}``; 429s are ``{"error": ..., "retry_after": N}``
  with a ``Retry-After`` header. Every response carries ``x-request-id``.
- Faults (`FakeTrainingAPI.inject`) and ids are deterministic under ``seed``; the
  deferred-commit faults (``late_commit``, ``commit_then_drop``,
  ``commit_then_stall``, ``commit_then_garble``) commit on the server's schedule,
  whatever the client does meanwhile.

Run it standalone with ``python -m baseten_training_async.testing --port 8000``; use
it from pytest through `baseten_training_async.testing.pytest_plugin`.
"""

from .._clock import VirtualClock
from ._clock import FakeClock, LinkedClock
from ._faults import Fault, FaultKind
from ._mock import MockTransport, fake_time, json_response
from ._models import (
    FakeStats,
    JobTimings,
    LogLine,
    RequestRecord,
    StoredJob,
    StoredProject,
    Team,
)
from ._routes import Route
from ._server import FakeTrainingAPI, LogLineLike
from ._spec import spec_bytes
from ._store import Outcome, default_outcome

__all__ = [
    "FakeClock",
    "FakeStats",
    "FakeTrainingAPI",
    "Fault",
    "FaultKind",
    "JobTimings",
    "LinkedClock",
    "LogLine",
    "LogLineLike",
    "MockTransport",
    "Outcome",
    "RequestRecord",
    "Route",
    "StoredJob",
    "StoredProject",
    "Team",
    "VirtualClock",
    "default_outcome",
    "fake_time",
    "json_response",
    "openapi_spec",
]


def openapi_spec() -> dict[str, object]:
    """Return a fresh copy of the bundled OpenAPI document.

    Returns:
        The decoded ``openapi.json`` the fake validates against.
    """
    import json

    document: dict[str, object] = json.loads(spec_bytes())
    return document
