"""Client (1): this SDK, ``baseten_training_async``."""

from __future__ import annotations

import asyncio
from typing import Any

import _harness as h
import _payloads as p


async def main(args: Any) -> dict[str, Any]:
    import msgspec

    from baseten_training_async import (
        Accelerator,
        AsyncTrainingClient,
        Compute,
        Image,
        Runtime,
        TrainingJobSpec,
        TrainingProject,
    )

    def make(i: int) -> TrainingJobSpec:
        return TrainingJobSpec(
            image=Image(base_image=p.BASE_IMAGE),
            compute=Compute(
                accelerator=Accelerator(accelerator=p.ACCELERATOR, count=p.ACCELERATOR_COUNT)
            ),
            runtime=Runtime(start_commands=list(p.START_COMMANDS)),
            name=p.job_name(i),
        )

    coordinator: Any = None
    if args.coordinator:
        from baseten_training_async.coordination import RedisCoordinator

        # A rate far above what loopback reaches: this measures the round trip, not throttling.
        coordinator = RedisCoordinator(args.coordinator, rate=1e7, burst=10**6)

    options: dict[str, Any] = {}
    if args.observe:
        # Every hook registered (each counts its events) and every span recorded by the
        # OpenTelemetry SDK (no exporter: the SDK's own cost, not an exporter's).
        from opentelemetry.sdk.trace import TracerProvider

        seen: dict[str, int] = {}

        def count(event: Any) -> None:
            name = type(event).__name__
            seen[name] = seen.get(name, 0) + 1

        kinds = ("request", "response", "retry", "reconcile")
        options = {
            "event_hooks": {kind: [count] for kind in kinds},
            "tracing": True,
            "tracer_provider": TracerProvider(),
        }

    async with AsyncTrainingClient(
        "bench-key",
        base_url=args.url,
        max_concurrency=args.concurrency,
        coordinator=coordinator,
        **options,
    ) as client:

        async def create(i: int) -> Any:
            return await client.jobs.create(p.PROJECT_ID, make(i))

        if args.scenario == "create":
            return await h.run_calls_async(
                create, calls=args.calls, concurrency=args.concurrency, warmup=args.warmup
            )

        if args.scenario == "decode":
            try:  # exactly the decoder the SDK's projects.list() uses
                from baseten_training_async._codec import decoder_for
                from baseten_training_async._wire import ProjectsEnvelope

                decoder: Any = decoder_for(ProjectsEnvelope)
                how = "SDK's own ProjectsEnvelope decoder (msgspec Structs)"
            except ImportError:  # private names moved: the same public models

                class Envelope(msgspec.Struct):
                    training_projects: list[TrainingProject]

                decoder = msgspec.json.Decoder(Envelope)
                how = "msgspec.json.Decoder over TrainingProject"

            body = h.fetch(args.url + "/v1/training_projects")
            result = h.run_decode(
                lambda b: decoder.decode(b).training_projects, body, reps=args.reps
            )
            result["how"] = how
            result.update(await h.run_list_async(client.projects.list, reps=max(3, args.reps // 4)))
            return result

        if args.scenario == "watch":
            # Every job awaited by its own task: the shared poller serves them all.
            ids = h.job_ids(args.jobs_file)

            async def see_all() -> list[Any]:
                return await asyncio.gather(
                    *(client.jobs.wait(args.project, j) for j in ids), return_exceptions=True
                )

            results, wall, cpu = await h.atimed(see_all)
            errors = [r for r in results if isinstance(r, BaseException)]
            stats = client.stats()
            return {
                "calls": len(ids),
                "errors": len(errors),
                "first_error": repr(errors[0])[:300] if errors else None,
                "wall_s": wall,
                "cpu_s": cpu,
                "requests": stats.status_listings + stats.status_lookups,
                "how": "asyncio.gather(jobs.wait(...) for each job)",
            }

        # create_many: the whole batch through the SDK's own bounded fan-out.
        await h.run_calls_async(create, calls=0, concurrency=args.concurrency, warmup=args.warmup)
        rss_before = h.rss_kb()

        async def batch() -> list[Any]:
            specs = [make(i) for i in range(args.calls)]
            return await client.jobs.create_many(p.PROJECT_ID, specs, concurrency=args.concurrency)

        results, wall, cpu = await h.atimed(batch)
        errors = [r for r in results if not hasattr(r, "current_status")]
        return {
            "calls": args.calls,
            "errors": len(errors),
            "first_error": repr(errors[0])[:300] if errors else None,
            "wall_s": wall,
            "cpu_s": cpu,
            "rss_before_kb": rss_before,
            "kept": len(results),
        }


if __name__ == "__main__":
    ARGS = h.parse_args()
    try:
        RESULT = asyncio.run(main(ARGS))
    except Exception as exc:
        h.fail(ARGS.label, ARGS.scenario, exc)
    else:
        h.emit({"label": ARGS.label, "scenario": ARGS.scenario, **RESULT})
