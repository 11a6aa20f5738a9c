"""``TrainingClient``: the synchronous facade over one `AsyncTrainingClient`.

Nothing here speaks to the API. The facade owns a private event loop running
on a thread of its own and one `AsyncTrainingClient` bound to that loop; each
call is the async method of the same name, run on that loop while the calling
thread waits. Wrappers are made on first use from the async resources
themselves, so every method the async client has, the facade has, with the
same arguments, models and errors:

- a coroutine method returns its result;
- a method returning an `AsyncPager` returns a `SyncPager` (a plain iterable,
  pages fetched lazily, ``to_list()`` for all items);
- a method returning an async iterator returns a plain iterator.

Because the calling thread only waits on a future, a call works from any
thread, including one whose own event loop is running (a notebook cell).
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import threading
import warnings
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Mapping
from types import TracebackType
from typing import Any, Generic, TypeVar

from ._client import AsyncTrainingClient, ClientStats
from ._clock import Clock
from ._errors import BasetenError, ClientClosedError
from ._limits import FlowControl
from ._pagination import AsyncPager
from ._retry import RetryPolicy
from ._watch import PollSettings

__all__ = ["SyncPager", "TrainingClient"]

T = TypeVar("T")

_THREAD_NAME = "baseten-training-sync"


class _LoopThread:
    """A private event loop on a thread of its own, started on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False

    @property
    def started(self) -> bool:
        return self._thread is not None

    @property
    def closed(self) -> bool:
        return self._closed

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise ClientClosedError("this client is closed; create a new TrainingClient")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                ready = threading.Event()

                def serve() -> None:
                    asyncio.set_event_loop(loop)
                    loop.call_soon(ready.set)
                    loop.run_forever()

                thread = threading.Thread(target=serve, name=_THREAD_NAME, daemon=True)
                thread.start()
                ready.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    def _refuse_own_thread(self, what: str) -> None:
        if threading.current_thread() is self._thread:
            raise BasetenError(
                f"{what} from a callback of this TrainingClient would deadlock; "
                "callbacks run on the client's event loop and must not call the client"
            )

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the private loop and wait for its result."""
        try:
            self._refuse_own_thread("calling the client")
            loop = self._ensure_loop()
        except BaseException:
            coro.close()  # never scheduled: no "coroutine was never awaited" warning
            raise
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result()
        except BaseException:
            # KeyboardInterrupt (or anything else) while waiting: cancel the call too.
            future.cancel()
            raise

    def close(self, final: Coroutine[Any, Any, None]) -> None:
        """Run ``final`` (the async client's ``aclose``), then stop and join the thread."""
        try:
            self._refuse_own_thread("closing the client")
        except BaseException:
            final.close()
            raise
        with self._lock:
            loop, thread = self._loop, self._thread
            already, self._closed = self._closed, True
        if already or loop is None or thread is None:
            final.close()  # never started: no session, no socket, nothing to close
            return
        try:
            asyncio.run_coroutine_threadsafe(_shutdown(final), loop).result()
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()

    def abandon(self) -> None:
        """Stop the loop without waiting: for a finalizer running on the loop's own thread."""
        with self._lock:
            loop, self._closed = self._loop, True
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(loop.stop)

    @property
    def on_own_thread(self) -> bool:
        return threading.current_thread() is self._thread


async def _shutdown(final: Coroutine[Any, Any, None]) -> None:
    try:
        await final
    finally:
        current = asyncio.current_task()
        pending = [task for task in asyncio.all_tasks() if task is not current]
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)
        loop = asyncio.get_running_loop()
        await loop.shutdown_asyncgens()  # unfinished log iterators
        await loop.shutdown_default_executor()  # the resolver's threads
        # Closed transports drop their sockets from loop callbacks; let them run.
        for _ in range(3):
            await asyncio.sleep(0)


async def _next(iterator: AsyncIterator[T]) -> T:
    return await anext(iterator)


class _SyncIterator(Iterator[T]):
    """A plain iterator over an async iterator, advanced on the private loop."""

    def __init__(self, runner: _LoopThread, iterator: AsyncIterator[T]) -> None:
        self._runner = runner
        self._iterator = iterator
        self._done = False

    def __iter__(self) -> _SyncIterator[T]:
        return self

    def __next__(self) -> T:
        if self._done:
            raise StopIteration
        try:
            return self._runner.run(_next(self._iterator))
        except StopAsyncIteration:
            self._done = True
            raise StopIteration from None

    def close(self) -> None:
        """Stop iterating and release what the async iterator holds."""
        if self._done:
            return
        self._done = True
        aclose = getattr(self._iterator, "aclose", None)
        if aclose is not None and not self._runner.closed:
            self._runner.run(aclose())

    def __enter__(self) -> _SyncIterator[T]:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class SyncPager(Generic[T]):
    """The synchronous `AsyncPager`: iterate it for items, pages fetched lazily.

    Example:
        >>> for job in client.jobs.list(project_id):  # doctest: +SKIP
        ...     print(job.id)
        >>> jobs = client.jobs.list(project_id).to_list()  # doctest: +SKIP
    """

    __slots__ = ("_pager", "_runner")

    def __init__(self, runner: _LoopThread, pager: AsyncPager[T]) -> None:
        self._runner = runner
        self._pager = pager

    def __iter__(self) -> Iterator[T]:
        return _SyncIterator(self._runner, self._pager.__aiter__())

    def pages(self) -> Iterator[list[T]]:
        """Iterate page by page, as the server returns them."""
        return _SyncIterator(self._runner, self._pager.pages())

    def to_list(self) -> list[T]:
        """Fetch every page and return all items."""
        return self._runner.run(self._pager.to_list())


def _to_sync(runner: _LoopThread, value: Any) -> Any:
    if isinstance(value, AsyncPager):
        return SyncPager(runner, value)
    if isinstance(value, AsyncIterator):
        return _SyncIterator(runner, value)
    if inspect.iscoroutine(value):
        return _to_sync(runner, runner.run(value))
    return value


def _sync_method(runner: _LoopThread, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    def call(*args: Any, **kwargs: Any) -> Any:
        return _to_sync(runner, method(*args, **kwargs))

    return call


class SyncResource:
    """A resource group of `TrainingClient`: the async group's methods, made blocking.

    ``client.jobs.retrieve(...)`` is ``await async_client.jobs.retrieve(...)``,
    run on the facade's loop. The wrappers are made on first use from the async
    resource, so they never drift from it.
    """

    def __init__(self, runner: _LoopThread, resource: object) -> None:
        self._runner = runner
        self._resource = resource

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        value = getattr(self._resource, name)
        if inspect.ismethod(value) or inspect.isfunction(value):
            value = _sync_method(self._runner, value)
        elif _is_resource(value):  # a nested group, e.g. ``jobs.sessions``
            value = SyncResource(self._runner, value)
        else:
            return value
        self.__dict__[name] = value  # made once per resource and name
        return value

    def __dir__(self) -> list[str]:
        return sorted(
            {*object.__dir__(self), *(n for n in dir(self._resource) if not n.startswith("_"))}
        )

    def __repr__(self) -> str:
        return f"<sync {type(self._resource).__name__}>"


class _SyncRawResponse:
    """``TrainingClient.with_raw_response``: each group's methods, blocking."""

    __slots__ = ("_raw", "_runner")

    def __init__(self, runner: _LoopThread, raw: object) -> None:
        self._runner = runner
        self._raw = raw

    def __getattr__(self, name: str) -> SyncResource:
        return SyncResource(self._runner, getattr(self._raw, name))


def _is_resource(value: object) -> bool:
    return type(value).__module__.startswith(f"{__package__}.resources")


class TrainingClient:
    """Synchronous client for the Baseten Training API.

    Takes the same arguments as `AsyncTrainingClient` and has the same resources
    and methods, returning the same models and raising the same errors. One
    async client runs on a private event-loop thread, started by the first
    call; calls from several threads share it. List-style calls return a
    `SyncPager`, a plain iterable.

    Use it as a context manager, or call `close` when done: closing stops the
    thread and closes every connection.

    Callbacks (``on_status_change``, ``on_progress``) run on the client's
    thread and must not call the client.

    Example:
        >>> with TrainingClient() as client:  # doctest: +SKIP
        ...     project = client.projects.upsert("my-project")
        ...     for job in client.jobs.list(project.id):
        ...         print(job.id, job.current_status)
    """

    # Made from the async client's resource groups in ``_init``; named here for type checkers.
    projects: SyncResource
    jobs: SyncResource
    teams: SyncResource
    capacity: SyncResource
    artifacts: SyncResource

    def __init__(self, api_key: str | None = None, **options: Any) -> None:
        self._init(AsyncTrainingClient(api_key, **options), _LoopThread(), owner=True)

    def _init(self, client: AsyncTrainingClient, runner: _LoopThread, *, owner: bool) -> None:
        self._async = client
        self._runner = runner
        self._owner = owner
        for name, value in vars(client).items():
            if not name.startswith("_") and _is_resource(value):
                setattr(self, name, SyncResource(runner, value))

    @property
    def base_url(self) -> str:
        """The API's base URL."""
        return self._async.base_url

    @property
    def timeout(self) -> float:
        """Seconds allowed for each attempt."""
        return self._async.timeout

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy in force."""
        return self._async.retry_policy

    @property
    def flow_control(self) -> FlowControl:
        """Client-wide concurrency, 429 cool-down and retry-budget state."""
        return self._async.flow_control

    @property
    def clock(self) -> Clock:
        """The clock every wait and deadline of this client uses."""
        return self._async.clock

    @property
    def commit_window(self) -> float:
        """Seconds a create with an unknown outcome may still be committed by the server."""
        return self._async.commit_window

    @property
    def poll_settings(self) -> PollSettings:
        """How often waits and watches list job statuses."""
        return self._async.poll_settings

    def stats(self) -> ClientStats:
        """What this client (and its views) have done so far."""
        return self._async.stats()

    def with_options(
        self,
        *,
        timeout: float | None = None,
        max_retries: int | None = None,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, str | int] | None = None,
        extra_body: Mapping[str, object] | None = None,
    ) -> TrainingClient:
        """A view of this client with other per-call settings.

        The view shares the thread, the connection pool and flow control;
        closing either closes both. The settings are those of
        `AsyncTrainingClient.with_options`.
        """
        view = object.__new__(TrainingClient)
        client = self._async.with_options(
            timeout=timeout,
            max_retries=max_retries,
            extra_headers=extra_headers,
            extra_query=extra_query,
            extra_body=extra_body,
        )
        view._init(client, self._runner, owner=False)
        return view

    @property
    def with_raw_response(self) -> _SyncRawResponse:
        """The same methods, returning a `RawResponse` (status, headers, request id, value)."""
        return _SyncRawResponse(self._runner, self._async.with_raw_response)

    def close(self) -> None:
        """Close the connections and stop the client's thread. Safe to call more than once."""
        self._runner.close(self._async.aclose())

    def __enter__(self) -> TrainingClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"TrainingClient(base_url={self.base_url!r}, api_key=<redacted>)"

    def __del__(self) -> None:
        runner = getattr(self, "_runner", None)
        if runner is not None and self._owner and runner.started and not runner.closed:
            warnings.warn(
                f"{self!r} was never closed; use 'with' or call client.close()",
                ResourceWarning,
                stacklevel=2,
            )
            if runner.on_own_thread:
                runner.abandon()
            else:
                try:
                    self.close()
                except Exception:  # a finalizer must not raise
                    runner.abandon()
