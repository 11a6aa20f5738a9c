"""The SDK's exception tree, and the mapping from HTTP statuses to it.

Every error the SDK raises is a `BasetenError`; no aiohttp, msgspec or
tenacity exception escapes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

import msgspec

from ._dates import parse_http_date
from .models import LogLine, TrainingJob, TrainingJobSpec

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BasetenError",
    "ClientClosedError",
    "ConflictError",
    "InternalServerError",
    "InvalidInputError",
    "JobFailedError",
    "NotFoundError",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimitError",
    "RetryBudgetExhaustedError",
    "UnprocessableEntityError",
    "WaitTimeoutError",
    "budget_exhausted",
]

_SNIPPET_CHARS = 200


class BasetenError(Exception):
    """Base class of every error this SDK raises."""


class InvalidInputError(BasetenError, ValueError):
    """An argument the SDK can check locally is invalid; nothing was sent.

    Attributes:
        field: The argument or spec field at fault, e.g. ``"job_id"`` or
            ``"compute.node_count"``.
    """

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")
        self.field = field


class ClientClosedError(BasetenError, RuntimeError):
    """The client was used after `AsyncTrainingClient.aclose`."""


class APIStatusError(BasetenError):
    """The API answered with a non-success HTTP status.

    Attributes:
        status_code: The HTTP status.
        message: The server's explanation, parsed from the body.
        body: The body, decoded from JSON where it was JSON, else the text.
        request_id: The ``x-request-id`` response header, when sent.
        method: The request's HTTP method.
        path: The request's path.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: Any = None,
        request_id: str | None = None,
        method: str = "",
        path: str = "",
    ) -> None:
        where = f" ({method} {path})" if method else ""
        rid = f" [request_id={request_id}]" if request_id else ""
        super().__init__(f"{status_code}: {message}{where}{rid}")
        self.status_code = status_code
        self.message = message
        self.body = body
        self.request_id = request_id
        self.method = method
        self.path = path


class BadRequestError(APIStatusError):
    """400: the API refused the request as malformed."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or invalid."""


class PermissionDeniedError(APIStatusError):
    """403: the API key may not do this."""


class NotFoundError(APIStatusError):
    """404: no such project, job or route."""


class ConflictError(APIStatusError):
    """409: the request conflicts with the resource's state."""


class UnprocessableEntityError(APIStatusError):
    """422: the request was well formed but semantically invalid."""


class RateLimitError(APIStatusError):
    """429: too many requests.

    Attributes:
        retry_after: Seconds the server asked to wait, if it said.
        refused_locally: True when nothing was sent: the client's cool-down
            after an earlier 429 outlasts what this call's deadline allows.
    """

    def __init__(
        self,
        message: str,
        *,
        retry_after: float | None = None,
        refused_locally: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after
        self.refused_locally = refused_locally


class InternalServerError(APIStatusError):
    """5xx: the server failed.

    Attributes:
        retry_after: Seconds the server asked to wait (``Retry-After`` on a 503).
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class APIConnectionError(BasetenError):
    """No usable response arrived: the connection failed or was dropped.

    Attributes:
        maybe_committed: True when the request may have reached the server and
            taken effect (it was sent, but the response was lost). Never True
            for a read (GET), which cannot take effect. For a job create this
            means the job may exist: see `spec`.
        spec: For a create whose outcome is unknown, the spec it sent.
    """

    def __init__(
        self,
        message: str,
        *,
        maybe_committed: bool = False,
        spec: TrainingJobSpec | None = None,
    ) -> None:
        super().__init__(message)
        self.maybe_committed = maybe_committed
        self.spec = spec


class APITimeoutError(APIConnectionError):
    """An attempt took longer than its timeout."""


class RetryBudgetExhaustedError(BasetenError):
    """The client stopped retrying because too many recent calls needed retries.

    This protects an API that is down from a retry storm. The error raised is
    the last attempt's own error, of its own class (a 503 is still an
    `InternalServerError` with its ``status_code``), that is also an instance
    of this class: catch either.
    """


_budget_classes: dict[type[BasetenError], type[BasetenError]] = {}


def budget_exhausted(error: BasetenError) -> BasetenError:
    """``error`` again, also marked as a `RetryBudgetExhaustedError`."""
    if isinstance(error, RetryBudgetExhaustedError):
        return error
    cls = type(error)
    marked = _budget_classes.get(cls)
    if marked is None:
        marked = type(
            cls.__name__, (cls, RetryBudgetExhaustedError), {"__module__": cls.__module__}
        )
        _budget_classes[cls] = marked
    copy = cls.__new__(marked)
    copy.__dict__.update(error.__dict__)
    copy.args = error.args
    copy.add_note(
        "not retried: the client's retry budget is exhausted "
        "(too many recent failures; the API may be down)"
    )
    return copy


class APIResponseValidationError(BasetenError):
    """A success response's body is not what the API's schema promises.

    Attributes:
        status_code: The HTTP status of the response.
        body_snippet: The first characters of the body.
        committed: For a create: the server answered 2xx, so the job exists
            although its body could not be read. Never send it again.
    """

    def __init__(
        self,
        message: str,
        *,
        status_code: int = 200,
        body_snippet: str = "",
        committed: bool = False,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body_snippet = body_snippet
        self.committed = committed


class PaginationError(APIResponseValidationError):
    """The server's paging went wrong, e.g. it repeated a page token."""


class WaitTimeoutError(BasetenError, TimeoutError):
    """`JobsResource.wait` timed out before the job finished.

    Attributes:
        job: The last state of the job that was seen.
        reason: ``"timeout"`` (the whole wait), ``"max_pending"`` or
            ``"max_running"`` (the job's time in that phase).
    """

    def __init__(self, message: str, *, job: TrainingJob, reason: str = "timeout") -> None:
        super().__init__(message)
        self.job = job
        self.reason = reason


class JobFailedError(BasetenError):
    """A waited-on job failed and the caller asked to raise on failure.

    Raised by ``wait(..., raise_on_failure=True)`` and ``wait_many`` for a job
    that ended ``TRAINING_JOB_FAILED``, ``_DEPLOY_FAILED`` or ``_PREEMPTED``.

    Attributes:
        job: The failed job.
        log_tail: Its last log lines (as many as ``log_tail=`` asked for), oldest first.
    """

    def __init__(self, message: str, *, job: TrainingJob, log_tail: list[LogLine]) -> None:
        super().__init__(message)
        self.job = job
        self.log_tail = log_tail


_STATUS_CLASSES: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: UnprocessableEntityError,
}


def body_snippet(body: bytes) -> str:
    """Return the start of a body as text, for error messages."""
    text = body[: _SNIPPET_CHARS * 4].decode("utf-8", "replace")
    return text if len(text) <= _SNIPPET_CHARS else text[:_SNIPPET_CHARS] + "..."


def _message_from(parsed: Any, raw: bytes, status: int) -> str:
    if isinstance(parsed, dict):
        for key in ("message", "error", "detail"):
            value = parsed.get(key)
            if isinstance(value, str) and value:
                return value
            if value:  # e.g. FastAPI's list of validation problems
                return body_snippet(msgspec.json.encode(value))
    text = body_snippet(raw).strip()
    return text or f"HTTP {status}"


def _seconds(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except (ValueError, OverflowError):
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def parse_retry_after(header: str | None, body: Any) -> float | None:
    """Seconds to wait from a ``Retry-After`` header or a body's ``retry_after``.

    The header may be delta-seconds or an HTTP date; the body wins when both
    are present because it is the more precise of the two. Negative, infinite
    or unparseable values are ignored.
    """
    if isinstance(body, dict):
        seconds = _seconds(body.get("retry_after"))
        if seconds is not None:
            return seconds
    if not header:
        return None
    seconds = _seconds(header.strip())
    if seconds is not None:
        return seconds
    when = parse_http_date(header)
    return None if when is None else max(0.0, when.timestamp() - time.time())


_PARSE_LIMIT = 64 * 1024  # error bodies larger than this are not parsed as JSON


def safe_json(raw: bytes, limit: int = _PARSE_LIMIT) -> Any:
    """Parse an error body as JSON if it is small and well formed, else return its text.

    Bounded in size and in nesting (msgspec raises `RecursionError` on very
    deep documents), so a hostile error body costs little to read.
    """
    if not raw:
        return None
    if len(raw) > limit:
        return body_snippet(raw)
    try:
        return msgspec.json.decode(raw)
    except (msgspec.DecodeError, RecursionError):
        return raw[:limit].decode("utf-8", "replace")


def status_error(
    status: int,
    raw: bytes,
    headers: Mapping[str, str],
    *,
    method: str,
    path: str,
    request_id: str | None = None,
) -> APIStatusError:
    """Build the exception for a non-success response.

    ``raw`` must already be redacted. Only a bounded prefix is parsed; the
    message, ``code`` and ``retry_after`` come from it.
    """
    parsed = safe_json(raw)
    message = _message_from(parsed, raw, status)
    common: dict[str, Any] = {
        "status_code": status,
        "body": parsed,
        "request_id": request_id,
        "method": method,
        "path": path,
    }
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(headers.get("retry-after"), parsed)
        cls: type[RateLimitError] | type[InternalServerError] = (
            RateLimitError if status == 429 else InternalServerError
        )
        return cls(message, retry_after=retry_after, **common)
    return _STATUS_CLASSES.get(status, APIStatusError)(message, **common)
