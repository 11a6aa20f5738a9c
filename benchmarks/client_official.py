"""Client (3): the official ``baseten`` package's ``AsyncManagementClient`` (httpx + pydantic).

Used as it ships: ``base_url_override`` points it at the canned server, and
its own ``httpx.AsyncClient`` (default pool limits) is the transport. Calls go
through ``client.api``, the generated training endpoints.
"""

from __future__ import annotations

import asyncio
from typing import Any

import _harness as h
import _payloads as p


async def main(args: Any) -> dict[str, Any]:
    from baseten.client import AsyncManagementClient
    from baseten.client.managementapi import (
        CreateTrainingJob,
        CreateTrainingJobAccelerator,
        CreateTrainingJobCompute,
        CreateTrainingJobImage,
        CreateTrainingJobRequest,
        CreateTrainingJobRuntime,
        ListTrainingProjectsResponse,
    )

    def make(i: int) -> CreateTrainingJobRequest:
        return CreateTrainingJobRequest(
            training_job=CreateTrainingJob(
                image=CreateTrainingJobImage(base_image=p.BASE_IMAGE),
                compute=CreateTrainingJobCompute(
                    accelerator=CreateTrainingJobAccelerator(
                        accelerator=p.ACCELERATOR, count=p.ACCELERATOR_COUNT
                    )
                ),
                runtime=CreateTrainingJobRuntime(start_commands=list(p.START_COMMANDS)),
                name=p.job_name(i),
            )
        )

    async with AsyncManagementClient(api_key="bench-key", base_url_override=args.url) as client:
        api = client.api

        async def send(request: CreateTrainingJobRequest) -> Any:
            response = await api.post_training_projects_jobs(
                training_project_id=p.PROJECT_ID, request=request
            )
            return response.training_job

        async def create(i: int) -> Any:
            return await send(make(i))

        if args.scenario == "create":
            return await h.run_calls_async(
                create, calls=args.calls, concurrency=args.concurrency, warmup=args.warmup
            )

        if args.scenario == "decode":

            async def list_projects() -> list[Any]:
                return (await api.get_training_projects()).training_projects

            body = h.fetch(args.url + "/v1/training_projects")
            result = h.run_decode(
                lambda b: ListTrainingProjectsResponse.model_validate_json(b).training_projects,
                body,
                reps=args.reps,
            )
            result["how"] = "ListTrainingProjectsResponse.model_validate_json (pydantic v2)"
            result.update(await h.run_list_async(list_projects, reps=max(3, args.reps // 4)))
            return result

        if args.scenario == "watch":
            # Per-job polling, as a user of this client writes it: a task per job.
            # At most --concurrency GETs in flight (as the SDK's default max_concurrency):
            # a thousand connects at once overflow a listen backlog.
            ids = h.job_ids(args.jobs_file)
            sent = [0]
            slots = asyncio.Semaphore(args.concurrency)

            async def wait(job_id: str) -> Any:
                while True:
                    sent[0] += 1
                    async with slots:
                        response = await api.get_training_projects_jobs_training_job_id(
                            training_project_id=args.project, training_job_id=job_id
                        )
                    if response.training_job.current_status in h.TERMINAL:
                        return response.training_job
                    await asyncio.sleep(args.poll_interval)

            async def see_all() -> list[Any]:
                return await asyncio.gather(*(wait(j) for j in ids), return_exceptions=True)

            results, wall, cpu = await h.atimed(see_all)
            errors = [r for r in results if isinstance(r, BaseException)]
            return {
                "calls": len(ids),
                "errors": len(errors),
                "first_error": repr(errors[0])[:300] if errors else None,
                "wall_s": wall,
                "cpu_s": cpu,
                "requests": sent[0],
                "how": f"a task per job, GET every {args.poll_interval:g} s, "
                f"{args.concurrency} in flight",
            }

        await h.run_calls_async(create, calls=0, concurrency=args.concurrency, warmup=args.warmup)
        await api.get_training_projects_jobs(training_project_id=p.PROJECT_ID)
        return await h.run_batch_async(make, send, calls=args.calls, concurrency=args.concurrency)


if __name__ == "__main__":
    ARGS = h.parse_args()
    try:
        RESULT = asyncio.run(main(ARGS))
    except Exception as exc:
        h.fail(ARGS.label, ARGS.scenario, exc)
    else:
        h.emit({"label": ARGS.label, "scenario": ARGS.scenario, **RESULT})
