"""The pager every list-style call returns, and the page walkers behind it.

An `AsyncPager` is both awaitable (all items as a list) and
async-iterable (items, pages fetched lazily). Each ``await`` or ``async for``
walks the pages afresh.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from datetime import datetime
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from ._dates import parse_http_date
from ._errors import APIResponseValidationError, PaginationError
from ._wire import LogsEnvelope
from .models import LogLine, TrainingJob

if TYPE_CHECKING:
    from ._client import _Core

__all__ = ["AsyncPager", "iter_logs", "offset_token_pages", "single_page"]

logger = logging.getLogger("baseten_training_async")

T = TypeVar("T")


class AsyncPager(Generic[T]):
    """A lazily fetched sequence of API items.

    Example:
        >>> jobs = await client.jobs.list(project_id)  # doctest: +SKIP
        >>> async for job in client.jobs.list(project_id):  # doctest: +SKIP
        ...     print(job.id)
    """

    __slots__ = ("_pages",)

    def __init__(self, pages: Callable[[], AsyncIterator[list[T]]]) -> None:
        self._pages = pages

    def pages(self) -> AsyncIterator[list[T]]:
        """Iterate page by page, as the server returns them."""
        return self._pages()

    async def __aiter__(self) -> AsyncIterator[T]:
        async for page in self._pages():
            for item in page:
                yield item

    async def to_list(self) -> list[T]:
        """Fetch every page and return all items."""
        items: list[T] = []
        async for page in self._pages():
            items.extend(page)
        return items

    def __await__(self) -> Generator[Any, None, list[T]]:
        return self.to_list().__await__()


def single_page(fetch: Callable[[], Awaitable[list[T]]]) -> Callable[[], AsyncIterator[list[T]]]:
    """Pages for an endpoint that returns everything in one response."""

    async def pages() -> AsyncIterator[list[T]]:
        yield await fetch()

    return pages


def offset_token_pages(
    fetch: Callable[[int | None], Awaitable[tuple[list[T], int | None]]],
) -> Callable[[], AsyncIterator[list[T]]]:
    """Pages for an endpoint paged by an integer ``page_token``.

    Stops on a null ``next_page_token`` or an empty page; raises
    `PaginationError` if the server hands back a token it already gave,
    which would otherwise loop forever.
    """

    async def pages() -> AsyncIterator[list[T]]:
        token: int | None = None
        seen = {0}  # the server's default first token
        while True:
            items, next_token = await fetch(token)
            if items:
                yield items
            if next_token is None or not items:
                return
            if next_token in seen:
                raise PaginationError(
                    f"the server repeated page_token {next_token}; stopping to avoid a loop"
                )
            seen.add(next_token)
            token = next_token

    return pages


# --------------------------------------------------------------------------- #
# Logs: time-window paging.                                                   #
# --------------------------------------------------------------------------- #

LOG_PAGE_LIMIT = 1000
LOG_WINDOW_MS = 7 * 24 * 3600 * 1000  # the API refuses windows longer than 7 days
_FOLLOW_LAG_MS = 10_000  # re-read this much behind the newest line for late arrivals
_FOLLOW_GRACE_POLLS = 2  # polls after the job finished, for the last lines to land
_NS_PER_MS = 1_000_000

_LogKey = tuple[int, str, str | None, str | None]


def _log_key(line: LogLine) -> _LogKey:
    return (int(line.timestamp), line.message, line.replica, line.request_id)


class _SeenLines:
    """Lines already yielded, as a multiset, so that re-read windows repeat none.

    Identical lines (same time, text and replica) are counted, not collapsed:
    a re-read page skips as many copies as were yielded and no more.
    """

    def __init__(self) -> None:
        self._counts: dict[_LogKey, int] = {}
        self.newest_ms: int | None = None

    def fresh(self, page: list[LogLine]) -> list[LogLine]:
        replayed: dict[_LogKey, int] = {}
        out: list[LogLine] = []
        for line in page:
            key = _log_key(line)
            copies = replayed.get(key, 0) + 1
            replayed[key] = copies
            if copies <= self._counts.get(key, 0):
                continue
            self._counts[key] = copies
            out.append(line)
            ms = key[0] // _NS_PER_MS
            if self.newest_ms is None or ms > self.newest_ms:
                self.newest_ms = ms
        return out

    def forget_before(self, ms: int) -> None:
        """Drop memory of lines that no later window can return again."""
        floor_ns = ms * _NS_PER_MS
        self._counts = {k: n for k, n in self._counts.items() if k[0] >= floor_ns}


def _iso_to_ms(value: str) -> int:
    try:
        return int(datetime.fromisoformat(value).timestamp() * 1000)
    except ValueError:
        raise APIResponseValidationError(
            f"the job's created_at is not an ISO 8601 time: {value!r}"
        ) from None


def _http_date_to_ms(value: str | None) -> int:
    when = parse_http_date(value)
    return int((when.timestamp() if when else time.time()) * 1000)


async def iter_logs(
    core: _Core,
    path: str,
    *,
    start_ms: int | None,
    end_ms: int | None,
    min_level: str | None,
    job: Callable[[], Awaitable[tuple[TrainingJob, str | None]]],
    follow: bool,
    poll_interval: float,
) -> AsyncIterator[LogLine]:
    """Yield a job's log lines oldest first, each exactly once.

    Windows are at most 7 days and pages at most 1000 lines. A full page moves
    the window start to the page's last millisecond, which is read again, and
    lines already yielded are dropped: the API filters by millisecond but
    stamps lines in nanoseconds, so ``last + 1`` would lose lines. A page that
    is all one millisecond is completed by reading that millisecond newest
    first. Empty windows never end the walk; only the end of the range does.
    """
    anchor: tuple[int, float] = (0, 0.0)  # the server's clock (ms) at a local instant
    if start_ms is None or end_ms is None:
        current, date = await job()
        anchor = (_http_date_to_ms(date), time.monotonic())
        if start_ms is None:
            start_ms = _iso_to_ms(current.created_at)
        if end_ms is None and not follow:
            end_ms = anchor[0]  # "now", on the server's clock

    def server_now_ms() -> int:
        return anchor[0] + int((time.monotonic() - anchor[1]) * 1000)

    async def fetch(start: int, end: int | None, direction: str) -> list[LogLine]:
        params: dict[str, str | int] = {
            "start_epoch_millis": start,
            "direction": direction,
            "limit": LOG_PAGE_LIMIT,
        }
        if end is not None:
            params["end_epoch_millis"] = end
        if min_level is not None:
            params["min_level"] = min_level
        envelope = await core.request("GET", path, LogsEnvelope, params=params, idempotent=True)
        return envelope.logs

    seen = _SeenLines()
    cursor = start_ms
    grace_polls: int | None = None
    while True:
        if end_ms is not None:
            window_end: int | None = min(cursor + LOG_WINDOW_MS, end_ms)
        elif cursor + LOG_WINDOW_MS < server_now_ms():
            window_end = cursor + LOG_WINDOW_MS  # following, still catching up on history
        else:
            window_end = None  # following at the present: the server's "now" ends it
        page = await fetch(cursor, window_end, "asc")
        for line in seen.fresh(page):
            yield line
        if len(page) >= LOG_PAGE_LIMIT:
            last_ms = int(page[-1].timestamp) // _NS_PER_MS
            if last_ms <= cursor:
                # A whole page inside one millisecond: take the rest from its far end.
                tail = await fetch(cursor, cursor, "desc")
                rest = sorted(seen.fresh(tail), key=_log_key)
                for line in rest:
                    yield line
                if len(tail) >= LOG_PAGE_LIMIT and len(rest) == len(tail):
                    # The two reads did not meet: lines between them were never seen.
                    logger.warning(
                        "more than %d log lines share millisecond %d; some may be missing",
                        2 * LOG_PAGE_LIMIT,
                        cursor,
                    )
                last_ms = cursor + 1
            cursor = last_ms
            if end_ms is not None and cursor > end_ms:
                return
            seen.forget_before(cursor)
            continue
        if window_end is not None:
            if end_ms is not None and window_end >= end_ms:
                return
            cursor = window_end + 1
            seen.forget_before(cursor)
            continue
        # Following, and caught up with the present.
        if grace_polls is not None:
            if grace_polls <= 0:
                return
            grace_polls -= 1
        await core.policy.sleep(poll_interval)
        if grace_polls is None:
            current, _ = await job()
            if current.is_terminal:
                grace_polls = _FOLLOW_GRACE_POLLS
        if seen.newest_ms is not None:
            cursor = max(cursor, seen.newest_ms - _FOLLOW_LAG_MS)
            seen.forget_before(cursor)
