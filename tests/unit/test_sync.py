"""``TrainingClient``, the sync facade, against the fake over loopback sockets.

The fake runs on a thread of its own (with its own event loop), so that the facade
can be called from plain code and from inside a running event loop alike: a call
from inside a loop blocks that loop until it returns, as it would in a notebook.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import os
import statistics
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

import baseten_training_async
from baseten_training_async import (
    AsyncPager,
    AsyncTrainingClient,
    BasetenError,
    ClientClosedError,
    InvalidInputError,
    JobsResource,
    JobStatus,
    NotFoundError,
    SyncPager,
    TrainingClient,
    TrainingJob,
    WaitTimeoutError,
    resources,
)
from baseten_training_async.testing import FakeClock, FakeTrainingAPI, JobTimings

T = TypeVar("T")
SPEC = {"image": {"base_image": "hello-world"}}


class ThreadedFake:
    """A `FakeTrainingAPI` served by an event loop on its own thread."""

    def __init__(self, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-api")
        self._thread.start()
        self.api = self.call(self._make(options))

    async def _make(self, options: dict[str, Any]) -> FakeTrainingAPI:
        api = FakeTrainingAPI(**options)
        await api.start()
        return api

    def call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=30)

    def client(self, **options: Any) -> TrainingClient:
        return TrainingClient(self.api.api_key, base_url=self.api.url, **options)

    def close(self) -> None:
        self.call(self.api.stop())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=30)
        self._loop.close()


@pytest.fixture
def fake() -> Iterator[ThreadedFake]:
    # Jobs run through their phases in about 10 ms of real time.
    served = ThreadedFake(
        seed=3,
        clock=FakeClock.real(speed=1000.0),
        timings=JobTimings(created=1, deploying=1, running=5),
    )
    yield served
    served.close()


# --------------------------------------------------------------------------- every method

MethodCall = Callable[[TrainingClient, dict[str, Any]], object]


def _made_job(client: TrainingClient, state: dict[str, Any]) -> object:
    job = client.jobs.create(state["project"].id, {**SPEC, "name": "sync-made"})
    state["job"] = job
    return job


def _checks(fake: ThreadedFake) -> dict[tuple[str, str], MethodCall]:
    """One call per public method of the async resources, with what it must return."""

    def pid(state: dict[str, Any]) -> str:
        return str(state["project"].id)

    def jid(state: dict[str, Any]) -> str:
        return str(state["job"].id)

    def stop(c: TrainingClient, s: dict[str, Any]) -> object:
        fake.api.capacity = 0  # pending until stopped, however slow this machine is
        try:
            fresh = c.jobs.create(pid(s), {**SPEC, "name": "to-stop"})
            return c.jobs.stop(pid(s), fresh.id).current_status == JobStatus.STOPPED
        finally:
            fake.api.capacity = None

    def delete_job(c: TrainingClient, s: dict[str, Any]) -> object:
        fresh = c.jobs.create(pid(s), {**SPEC, "name": "to-delete"})
        return c.jobs.delete(pid(s), fresh.id).id == fresh.id

    def update(c: TrainingClient, s: dict[str, Any]) -> object:
        fake.api.capacity = 0  # only a pending job takes a new priority
        try:
            fresh = c.jobs.create(pid(s), {**SPEC, "name": "to-update"})
            return c.jobs.update(pid(s), fresh.id, priority=5).priority == 5
        finally:
            fake.api.capacity = None

    def delete_project(c: TrainingClient, s: dict[str, Any]) -> object:
        other = c.projects.upsert("to-delete")
        return c.projects.delete(other.id).deleted

    def logs(c: TrainingClient, s: dict[str, Any]) -> object:
        born_ns = int(fake.api.jobs[jid(s)].created_at * 1e9)
        fake.api.set_logs(
            jid(s),
            [{"timestamp_ns": born_ns + n * 1_000_000, "message": f"line {n}"} for n in range(3)],
        )
        lines = c.jobs.logs(pid(s), jid(s))
        assert not isinstance(lines, list)
        return [line.message for line in lines] == ["line 0", "line 1", "line 2"]

    def checkpoint_files(c: TrainingClient, s: dict[str, Any]) -> object:
        fake.api.set_checkpoint_files(jid(s), 5)
        pager = c.jobs.checkpoint_files(pid(s), jid(s), page_size=2)
        assert isinstance(pager, SyncPager)
        return [len(page) for page in pager.pages()] == [2, 2, 1] and len(list(pager)) == 5

    def checkpoints(c: TrainingClient, s: dict[str, Any]) -> object:
        fake.api.set_checkpoints(jid(s), 2)
        return len(c.jobs.checkpoints(pid(s), jid(s))) == 2

    def create_many(c: TrainingClient, s: dict[str, Any]) -> object:
        specs = [{**SPEC, "name": f"many-{n}"} for n in range(5)]
        made = c.jobs.create_many(pid(s), specs, concurrency=3)
        again = c.jobs.create_many(pid(s), specs, adopt_existing=True)
        return [j.name for j in made] == [f"many-{n}" for n in range(5)] and [
            j.id for j in again
        ] == [j.id for j in made]

    def auth_codes(c: TrainingClient, s: dict[str, Any]) -> object:
        fake.api.capacity = 0  # a pending job keeps its sessions for the next two checks
        spec = {**SPEC, "name": "with-sessions", "interactive_session": {"trigger": "on_demand"}}
        s["waiting"] = c.jobs.create(pid(s), spec).id
        codes = c.jobs.sessions.auth_codes(pid(s), s["waiting"])
        s["session_id"] = codes[0].session_id
        return len(codes) >= 1

    def sign_ssh_key(c: TrainingClient, s: dict[str, Any]) -> object:
        try:
            return (
                c.jobs.sessions.sign_ssh_key(
                    pid(s), s["waiting"], public_key="ssh-ed25519 AAAAC3Nza test@host"
                )
                is not None
            )
        finally:
            fake.api.capacity = None

    def team_id(c: TrainingClient) -> str:
        return str(next(iter(c.teams.list())).id)

    return {
        ("projects", "upsert"): lambda c, s: s.setdefault("project", c.projects.upsert("sync")),
        ("projects", "list"): lambda c, s: [p.name for p in c.projects.list()] == ["sync"],
        ("projects", "retrieve"): lambda c, s: c.projects.retrieve(pid(s)).name == "sync",
        ("projects", "cache_summary"): lambda c, s: (
            c.projects.cache_summary(pid(s)).project_id == pid(s)
        ),
        ("projects", "delete"): delete_project,
        ("jobs", "create"): _made_job,
        ("jobs", "retrieve"): lambda c, s: c.jobs.retrieve(pid(s), jid(s)).id == jid(s),
        ("jobs", "find"): lambda c, s: c.jobs.find(jid(s)).id == jid(s),
        ("jobs", "list"): lambda c, s: jid(s) in [j.id for j in c.jobs.list(pid(s)).to_list()],
        ("jobs", "search"): lambda c, s: (
            [j.id for j in c.jobs.search(project_id=pid(s), job_id=jid(s))] == [jid(s)]
        ),
        ("jobs", "wait"): lambda c, s: (
            c.jobs.wait(pid(s), jid(s), poll_interval=0.005).current_status == JobStatus.COMPLETED
        ),
        ("jobs", "wait_many"): lambda c, s: (
            c.jobs.wait_many(pid(s), [jid(s)], poll_interval=0.005).done[jid(s)].current_status
            == JobStatus.COMPLETED
        ),
        ("jobs", "watch"): lambda c, s: (
            [e.status for e in c.jobs.watch(pid(s), job_ids=[jid(s)], poll_interval=0.005)]
            == [JobStatus.COMPLETED]
        ),
        ("jobs", "supervise"): lambda c, s: (
            c.jobs.supervise(pid(s), [{**SPEC, "name": "supervised"}], poll_interval=0.005)[
                0
            ].completed
        ),
        ("jobs", "recreate"): lambda c, s: c.jobs.recreate(pid(s), jid(s)).id != jid(s),
        ("jobs", "metrics"): lambda c, s: c.jobs.metrics(pid(s), jid(s)).training_job.id == jid(s),
        ("jobs", "download_urls"): lambda c, s: isinstance(
            c.jobs.download_urls(pid(s), jid(s)), list
        ),
        ("jobs", "capacity"): lambda c, s: c.jobs.capacity() is not None,
        ("jobs", "logs"): logs,
        ("jobs", "checkpoints"): checkpoints,
        ("jobs", "checkpoint_files"): checkpoint_files,
        ("jobs", "stop"): stop,
        ("jobs", "update"): update,
        ("jobs", "delete"): delete_job,
        ("jobs", "create_many"): create_many,
        ("jobs", "queue_context"): lambda c, s: c.jobs.queue_context(jid(s)) is not None,
        ("jobs.sessions", "auth_codes"): auth_codes,
        ("jobs.sessions", "update"): lambda c, s: (
            c.jobs.sessions.update(pid(s), s["waiting"], s["session_id"], timeout_minutes=30)
            is not None
        ),
        ("jobs.sessions", "sign_ssh_key"): sign_ssh_key,
        ("teams", "list"): lambda c, s: isinstance(team_id(c), str),
        ("capacity", "retrieve"): lambda c, s: c.capacity.retrieve() is not None,
        ("capacity", "update"): lambda c, s: (
            c.capacity.update(team_id=team_id(c), gpu_type="H100", max_gpus=8) is not None
        ),
        ("artifacts", "upload_credentials"): lambda c, s: (
            c.artifacts.upload_credentials() is not None
        ),
    }


RESOURCE_TYPES = tuple(getattr(resources, name) for name in resources.__all__)


def _async_methods() -> set[tuple[str, str]]:
    """Every public method of every resource group of the async client, nested ones too."""
    client = AsyncTrainingClient("unused-key", base_url="http://127.0.0.1:9")  # never called
    found: set[tuple[str, str]] = set()

    def walk(path: str, resource: object) -> None:
        for name, member in inspect.getmembers(type(resource)):
            if name.startswith("_"):
                continue
            if inspect.isfunction(member):
                found.add((path, name))
            elif isinstance(member, property):
                nested = getattr(resource, name)
                if isinstance(nested, RESOURCE_TYPES):
                    walk(f"{path}.{name}", nested)

    for name, value in vars(client).items():
        if not name.startswith("_") and isinstance(value, RESOURCE_TYPES):
            walk(name, value)
    return found


def _call_every_method(fake: ThreadedFake) -> None:
    checks = _checks(fake)
    expected = _async_methods()
    assert {"projects", "jobs", "jobs.sessions"} <= {group for group, _ in expected}
    assert set(checks) == expected, "a resource method has no sync check: add one"
    state: dict[str, Any] = {}
    with fake.client() as client:
        for (group, name), check in checks.items():
            result = check(client, state)
            assert result, f"client.{group}.{name}: unexpected result {result!r}"
    assert isinstance(state["job"], TrainingJob)


def test_every_resource_method_from_plain_sync_code(fake: ThreadedFake) -> None:
    _call_every_method(fake)


async def test_every_resource_method_from_inside_a_running_loop(fake: ThreadedFake) -> None:
    asyncio.get_running_loop()  # the test's loop is running, as a notebook's is
    _call_every_method(fake)


def test_every_resource_group_is_declared_for_type_checkers() -> None:
    groups = {group for group, _ in _async_methods() if "." not in group}
    assert groups == set(TrainingClient.__annotations__)


def test_the_client_has_every_public_attribute_of_the_async_client(fake: ThreadedFake) -> None:
    renamed = {"aclose": "close"}
    public = {name for name in dir(AsyncTrainingClient) if not name.startswith("_")}
    with fake.client() as client:
        for name in public:
            assert hasattr(client, renamed.get(name, name)), name
        client.jobs.create(client.projects.upsert("stats").id, {**SPEC, "name": "counted"})
        assert client.stats() is not None
        assert client.retry_policy.max_retries >= 0
        assert client.flow_control is not None
        assert client.commit_window > 0
        assert client.clock is not None


def test_the_sync_pager_mirrors_the_async_pager() -> None:
    public = {name for name in dir(AsyncPager) if not name.startswith("_")}
    assert public <= {name for name in dir(SyncPager) if not name.startswith("_")}


def test_wrappers_keep_names_signatures_and_docs(fake: ThreadedFake) -> None:
    with fake.client() as client:
        create = client.jobs.create
        assert create.__name__ == "create"
        assert create.__doc__ == JobsResource.create.__doc__
        assert list(inspect.signature(create).parameters) == [
            "project_id",
            "spec",
            "idempotency_key",
        ]
        assert client.jobs.create is create  # made once
        assert {"create", "create_many", "logs", "wait"} <= set(dir(client.jobs))
        with pytest.raises(AttributeError):
            client.jobs._retrieve_with_date  # noqa: B018
        with pytest.raises(AttributeError):
            client.jobs.no_such_method  # noqa: B018


# --------------------------------------------------------------------------- errors


def test_the_same_errors_as_the_async_client(fake: ThreadedFake) -> None:
    with fake.client() as client:
        project = client.projects.upsert("errors")
        with pytest.raises(NotFoundError) as missing:
            client.jobs.retrieve(project.id, "no-such-job")
        assert missing.value.status_code == 404
        before = len(fake.api.requests)
        with pytest.raises(InvalidInputError, match=r"spec\.compute\.node_count"):
            client.jobs.create(project.id, {**SPEC, "compute": {"node_count": 0}})
        with pytest.raises(InvalidInputError, match="page_size"):
            client.jobs.checkpoint_files(project.id, "j", page_size=0)
        assert len(fake.api.requests) == before  # refused before any request
        job = client.jobs.create(project.id, {**SPEC, "name": "slow"})
        fake.api.force_status(job.id, JobStatus.RUNNING)  # never finishes
        with pytest.raises(WaitTimeoutError) as timed_out:
            client.jobs.wait(project.id, job.id, timeout=0.001, poll_interval=0.001)
        assert timed_out.value.job is not None
        assert timed_out.value.job.id == job.id


def test_a_callback_that_calls_the_client_is_refused_not_deadlocked(fake: ThreadedFake) -> None:
    with fake.client() as client:
        project = client.projects.upsert("callbacks")
        job = client.jobs.create(project.id, {**SPEC, "name": "cb"})
        seen: list[str] = []

        def reenter(current: TrainingJob) -> None:
            seen.append(current.current_status)
            client.projects.list().to_list()

        with pytest.raises(BasetenError, match="deadlock"):
            client.jobs.wait(project.id, job.id, poll_interval=0.001, on_status_change=reenter)
        assert seen, "the callback ran"
        assert client.projects.retrieve(project.id).id == project.id  # still usable


# --------------------------------------------------------------------------- lifecycle


def _client_sockets(port: int) -> set[int]:
    """Inodes of this process's TCP sockets connected to ``port`` (the client side)."""
    connected: set[int] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        path = Path(table)
        if not path.exists():
            continue
        for row in path.read_text().splitlines()[1:]:
            fields = row.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[3] != "0A":  # not a listener
                connected.add(int(fields[9]))
    own: set[int] = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            own.add(int(target[8:-1]))
    return connected & own


def test_close_leaves_no_thread_and_no_socket(fake: ThreadedFake) -> None:
    port = int(fake.api.url.rsplit(":", 1)[1])
    threads_before = set(threading.enumerate())
    client = fake.client()
    project = client.projects.upsert("lifecycle")
    client.jobs.create_many(project.id, [{**SPEC, "name": f"l-{n}"} for n in range(20)])
    logs = iter(client.jobs.logs(project.id, client.jobs.list(project.id).to_list()[0].id))
    next(logs, None)  # an unfinished iterator is finalized by close
    assert _client_sockets(port), "the client holds pooled connections while open"
    assert set(threading.enumerate()) - threads_before, "the client runs its own thread"
    client.close()
    client.close()  # idempotent
    assert set(threading.enumerate()) - threads_before == set()
    assert _client_sockets(port) == set()
    with pytest.raises(ClientClosedError):
        client.projects.list().to_list()


def test_context_manager_closes_and_unused_client_starts_no_thread(fake: ThreadedFake) -> None:
    threads_before = set(threading.enumerate())
    with fake.client() as client:
        assert set(threading.enumerate()) == threads_before  # nothing until the first call
        assert client.base_url == fake.api.url
        assert "api_key=<redacted>" in repr(client)
        assert client.projects.list().to_list() == []
    assert set(threading.enumerate()) == threads_before
    with pytest.raises(ClientClosedError):
        client.projects.upsert("after")


def test_missing_api_key_fails_at_construction(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("BASETEN_API_KEY", raising=False)
    with pytest.raises(InvalidInputError, match="api_key"):
        TrainingClient()


def test_an_unclosed_client_warns() -> None:
    served = ThreadedFake(seed=1)
    try:
        client = served.client()
        client.projects.list().to_list()
        threads = {t.name for t in threading.enumerate()}
        assert "baseten-training-sync" in threads
        with pytest.warns(ResourceWarning, match="never closed"):
            client.__del__()  # what garbage collection calls
        assert "baseten-training-sync" not in {t.name for t in threading.enumerate()}
        with pytest.raises(ClientClosedError):
            client.projects.list().to_list()
    finally:
        served.close()


def test_with_options_shares_the_thread(fake: ThreadedFake) -> None:
    threads_before = set(threading.enumerate())
    with fake.client() as client:
        quick = client.with_options(timeout=5, max_retries=0)
        assert quick.timeout == 5
        assert client.timeout != 5
        quick.projects.upsert("view")
        assert [p.name for p in client.projects.list()] == ["view"]
        assert len(set(threading.enumerate()) - threads_before) == 1
    with pytest.raises(ClientClosedError):
        quick.projects.list().to_list()


def test_threads_share_one_client_and_asyncio_run_twice_works(fake: ThreadedFake) -> None:
    with fake.client() as client:
        project = client.projects.upsert("shared")

        async def launch(n: int) -> str:
            # What fails with one AsyncTrainingClient: a second asyncio.run, another loop.
            return str(client.jobs.create(project.id, {**SPEC, "name": f"run-{n}"}).name)

        assert asyncio.run(launch(1)) == "run-1"
        assert asyncio.run(launch(2)) == "run-2"
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            names = list(pool.map(lambda n: asyncio.run(launch(n)), range(3, 11)))
        assert names == [f"run-{n}" for n in range(3, 11)]
        assert len(client.jobs.list(project.id).to_list()) == 10


# --------------------------------------------------------------------------- throughput


ROUNDS = 5


def test_create_many_500_sync_vs_async_throughput(fake: ThreadedFake) -> None:
    """Printed, not asserted: five alternating rounds of each; best and median of each."""
    specs = [{**SPEC, "name": f"bulk-{n}"} for n in range(500)]
    api = fake.api

    def with_async(pid: str) -> list[Any]:
        async def go() -> list[Any]:
            async with AsyncTrainingClient(api.api_key, base_url=api.url) as client:
                return await client.jobs.create_many(pid, specs, concurrency=32)

        return asyncio.run(go())

    def with_sync(pid: str) -> list[Any]:
        with fake.client() as client:
            return list(client.jobs.create_many(pid, specs, concurrency=32))

    seconds: dict[str, list[float]] = {"async": [], "sync": []}
    cpu: dict[str, list[float]] = {"async": [], "sync": []}  # this process, fake included
    for round_ in range(ROUNDS):
        order = [("async", with_async), ("sync", with_sync)]
        for kind, run in order if round_ % 2 == 0 else order[::-1]:
            pid = fake.call(_upsert(api, f"bulk-{kind}-{round_}"))
            started, cpu_started = time.perf_counter(), time.process_time()
            results = run(pid)
            seconds[kind].append(time.perf_counter() - started)
            cpu[kind].append(time.process_time() - cpu_started)
            assert len(results) == 500
            assert all(isinstance(r, TrainingJob) for r in results)
    assert len(api.jobs) == 2 * 500 * ROUNDS
    for label, pick in (("best", min), ("median", statistics.median)):
        fast_async, fast_sync = pick(seconds["async"]), pick(seconds["sync"])
        print(
            f"\ncreate_many of 500, {label} of {ROUNDS} (client open and close included): "
            f"async {500 / fast_async:.0f} jobs/s ({fast_async:.3f} s), "
            f"sync {500 / fast_sync:.0f} jobs/s ({fast_sync:.3f} s), "
            f"sync/async throughput = {fast_async / fast_sync:.2f}"
        )
    cpu_async, cpu_sync = statistics.median(cpu["async"]), statistics.median(cpu["sync"])
    print(
        f"CPU seconds per batch (median; the machine's other load does not count): "
        f"async {cpu_async:.3f}, sync {cpu_sync:.3f}, sync/async = {cpu_sync / cpu_async:.2f}"
    )


async def _upsert(api: FakeTrainingAPI, name: str) -> str:
    return api.add_project(name).id


def test_training_client_is_public() -> None:
    assert baseten_training_async.TrainingClient is TrainingClient
    assert "TrainingClient" in baseten_training_async.__all__
