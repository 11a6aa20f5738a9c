"""The pager every list-style call returns, and the page walkers behind it.

An `AsyncPager` is both awaitable (all items as a list) and
async-iterable (items, pages fetched lazily). Each ``await`` or ``async for``
walks the pages afresh.
"""

from __future__ import annotations

import itertools
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Generator
from datetime import datetime
from typing import Any, Generic, TypeVar

from ._clock import Clock
from ._errors import APIResponseValidationError, PaginationError
from ._wire import LOG_PAGE_LIMIT
from .models import LogLine, TrainingJob

__all__ = ["AsyncPager", "log_pages", "offset_token_pages", "single_page"]

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

_MAX_STALLED_PAGES = 3  # full pages in a row with nothing new before the walk gives up
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


async def _server_anchor(
    job: Callable[[], Awaitable[tuple[TrainingJob, datetime | None]]],
) -> tuple[TrainingJob, int]:
    current, server_time = await job()
    now = server_time.timestamp() if server_time else time.time()
    return current, int(now * 1000)


def log_pages(
    fetch: Callable[[int, int | None, str], Awaitable[list[LogLine]]],
    *,
    start_ms: int | None,
    end_ms: int | None,
    job: Callable[[], Awaitable[tuple[TrainingJob, datetime | None]]],
    follow: bool,
    poll_interval: float,
    clock: Clock,
) -> Callable[[], AsyncIterator[list[LogLine]]]:
    """Pages of a job's log lines, oldest first, each line exactly once.

    Windows are at most 7 days and pages at most 1000 lines. A full page moves
    the window start to the page's last millisecond, which is read again, and
    lines already yielded are dropped: the API filters by millisecond but
    stamps lines in nanoseconds, so ``last + 1`` would lose lines. A page that
    is all one millisecond is completed by reading that millisecond newest
    first. Empty windows never end the walk; only the end of the range does.

    The server is checked, not trusted: lines outside the requested window are
    dropped, a page out of order raises `PaginationError`, and so does a walk
    that stops making progress.
    """

    async def checked(start: int, end: int | None, direction: str) -> tuple[list[LogLine], bool]:
        """The page's lines inside the window, and whether the server's page was full."""
        page = await fetch(start, end, direction)
        stamps = [int(line.timestamp) // _NS_PER_MS for line in page]
        ordered = all(
            (a <= b) if direction == "asc" else (a >= b) for a, b in itertools.pairwise(stamps)
        )
        if not ordered:
            raise PaginationError(
                f"the server returned log lines out of {direction} order; "
                "stopping rather than lose lines"
            )
        # A line past the window's end on an ascending page means the window is
        # exhausted, even if the server ignored ``end`` and filled the page.
        past_end = end is not None and direction == "asc" and bool(stamps) and stamps[-1] > end
        full = len(page) >= LOG_PAGE_LIMIT and not past_end
        inside = [
            line
            for line, ms in zip(page, stamps, strict=True)
            if ms >= start and (end is None or ms <= end)
        ]
        if len(page) >= LOG_PAGE_LIMIT and not inside and not past_end:
            raise PaginationError(
                "the server returned a full page of log lines outside the requested window"
            )
        return inside, full

    async def pages() -> AsyncIterator[list[LogLine]]:
        anchor = (0, 0.0)  # the server's clock (ms) at a local instant
        start, end = start_ms, end_ms
        if start is None or end is None:
            current, server_ms = await _server_anchor(job)
            anchor = (server_ms, clock.monotonic())
            if start is None:
                start = _iso_to_ms(current.created_at)
            if end is None and not follow:
                end = server_ms  # "now", on the server's clock

        def server_now_ms() -> int:
            return anchor[0] + int((clock.monotonic() - anchor[1]) * 1000)

        seen = _SeenLines()
        cursor = start
        grace_polls: int | None = None
        stalled = 0
        while True:
            if end is not None:
                window_end: int | None = min(cursor + LOG_WINDOW_MS, end)
            elif cursor + LOG_WINDOW_MS < server_now_ms():
                window_end = cursor + LOG_WINDOW_MS  # following, still catching up on history
            else:
                window_end = None  # following at the present: the server's "now" ends it
            page, full = await checked(cursor, window_end, "asc")
            fresh = seen.fresh(page)
            if fresh:
                yield fresh
            if full:
                last_ms = int(page[-1].timestamp) // _NS_PER_MS
                if last_ms <= cursor:
                    # A whole page inside one millisecond: take the rest from its far end.
                    tail, tail_full = await checked(cursor, cursor, "desc")
                    rest = sorted(seen.fresh(tail), key=_log_key)
                    if rest:
                        yield rest
                    if tail_full and len(rest) == len(tail):
                        # The two reads did not meet: lines between them were never seen.
                        logger.warning(
                            "more than %d log lines share millisecond %d; some may be missing",
                            2 * LOG_PAGE_LIMIT,
                            cursor,
                        )
                    last_ms = cursor + 1
                stalled = 0 if fresh else stalled + 1
                if stalled > _MAX_STALLED_PAGES:
                    raise PaginationError(
                        f"{stalled} full log pages in a row brought no new line; "
                        "the server is not honouring the window"
                    )
                cursor = last_ms
                if end is not None and cursor > end:
                    return
                seen.forget_before(cursor)
                continue
            if window_end is not None:
                if end is not None and window_end >= end:
                    return
                cursor = window_end + 1
                seen.forget_before(cursor)
                continue
            # Following, and caught up with the present.
            if grace_polls is not None:
                if grace_polls <= 0:
                    return
                grace_polls -= 1
            await clock.sleep(poll_interval)
            if grace_polls is None:
                current, _ = await job()
                if current.is_terminal:
                    grace_polls = _FOLLOW_GRACE_POLLS
            if seen.newest_ms is not None:
                cursor = max(cursor, seen.newest_ms - _FOLLOW_LAG_MS)
                seen.forget_before(cursor)

    return pages
