"""``supervise`` survives ``kill -9``: a re-run of the same call finishes the job (issue 15).

A subprocess supervises 30 specs against the fake (20-30% of jobs are preempted) and is
killed with SIGKILL once some runs have completed and some have been relaunched. The
same call, run again here, launches nothing for the runs that had finished, launches no
name twice, and sees every run to COMPLETED.
"""

from __future__ import annotations

import asyncio
import collections
import signal
import sys
import textwrap

from baseten_training_async import AsyncTrainingClient, JobStatus, PollSettings
from baseten_training_async.testing import FakeClock, FakeTrainingAPI, JobTimings, Route

SPECS = 30
POLL = PollSettings(min_interval=0.02, max_interval=0.1, transition_interval=0.05)
CHILD = textwrap.dedent(
    """
    import asyncio, sys
    from baseten_training_async import AsyncTrainingClient, PollSettings

    async def main(url, key, project_id, count):
        specs = [{"name": f"kill-{i}", "image": {"base_image": "x"}} for i in range(count)]
        poll = PollSettings(min_interval=0.02, max_interval=0.1, transition_interval=0.05)
        async with AsyncTrainingClient(key, base_url=url, poll=poll) as client:
            await client.jobs.supervise(project_id, specs, max_attempts=5)
        print("finished", flush=True)

    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])))
    """
)


def _spec_of(name: str) -> str:
    return name.split("-attempt-")[0]


async def test_a_rerun_after_sigkill_launches_nothing_for_finished_runs() -> None:
    timings = JobTimings(created=1.0, deploying=1.0, running=20.0)
    clock = FakeClock.real(speed=50.0)  # a job runs 22 fake s: about 0.44 s
    async with FakeTrainingAPI(seed=9, timings=timings, clock=clock, log_every=1.0) as api:
        api.inject("preemption", probability=0.3, after=10.0)
        project = api.add_project("killed")
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-c",
            CHILD,
            api.url,
            api.api_key,
            project.id,
            str(SPECS),
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        try:
            for _ in range(400):  # at most 20 s
                names = [r.body["training_job"]["name"] for r in api.requests_for(Route.CREATE_JOB)]
                completed = [
                    job
                    for job in api.jobs.values()
                    if api.job_status(job.id) == JobStatus.COMPLETED
                ]
                if completed and any("-attempt-" in name for name in names):
                    break
                await asyncio.sleep(0.05)
            else:
                raise AssertionError("the supervisor never got going")
            child.send_signal(signal.SIGKILL)
            await asyncio.wait_for(child.wait(), 10)
        finally:
            if child.returncode is None:
                child.kill()
                await child.wait()
        assert child.returncode == -signal.SIGKILL
        sent_before = len(api.requests_for(Route.CREATE_JOB))
        finished = {
            _spec_of(job.name or "")
            for job in api.jobs.values()
            if api.job_status(job.id) == JobStatus.COMPLETED
        }

        specs = [{"name": f"kill-{i}", "image": {"base_image": "x"}} for i in range(SPECS)]
        async with AsyncTrainingClient(api.api_key, base_url=api.url, poll=POLL) as client:
            runs = await asyncio.wait_for(
                client.jobs.supervise(project.id, specs, max_attempts=5), 60
            )
        after = api.requests_for(Route.CREATE_JOB)[sent_before:]
        launched = collections.Counter(job.name for job in api.jobs.values())

    relaunched_after = {_spec_of(r.body["training_job"]["name"]) for r in after}
    assert finished, "some runs had completed before the kill"
    assert not finished & relaunched_after  # nothing new for a finished run
    assert all(run.completed for run in runs)
    assert max(launched.values()) == 1  # no name launched twice, across the kill
    for run in runs:
        assert [a.name for a in run.attempts] == [
            run.name if a.number == 1 else f"{run.name}-attempt-{a.number}" for a in run.attempts
        ]
    print(
        f"\nsupervise() killed with SIGKILL after {sent_before} creates ({len(finished)} runs "
        f"done); the re-run sent {len(after)} creates, none for a finished run"
    )
