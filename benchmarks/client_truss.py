"""Client (4): truss's ``BasetenApi`` (sync ``requests``), as truss ships it.

``BasetenApi`` derives its REST base URL from the app URL through a fixed
table (an unknown app URL maps to the production API), so the one change made
here is to point its ``RestAPIClient.base_url`` at the canned server. Every
call is then exactly truss's code: ``requests.post`` with no pooled session
(a new connection per call), ``job.model_dump()`` and ``resp.json()``.
Run serially (``--threads 1``) or from a thread pool (``--threads 32``).
"""

from __future__ import annotations

from typing import Any

import _harness as h
import _payloads as p


def main(args: Any) -> dict[str, Any]:
    from truss.base.truss_config import AcceleratorSpec
    from truss.remote.baseten.api import BasetenApi
    from truss.remote.baseten.auth import ApiKeyCredential, AuthService
    from truss_train.definitions import Compute, Image, Runtime
    from truss_train.deployment import PreparedTrainingJob

    api = BasetenApi(args.url, AuthService(ApiKeyCredential(api_key="bench-key")))
    api._rest_api_client.base_url = args.url

    def make(i: int) -> PreparedTrainingJob:
        return PreparedTrainingJob(
            image=Image(base_image=p.BASE_IMAGE),
            compute=Compute(
                accelerator=AcceleratorSpec(accelerator=p.ACCELERATOR, count=p.ACCELERATOR_COUNT)
            ),
            runtime=Runtime(start_commands=list(p.START_COMMANDS)),
            name=p.job_name(i),
        )

    def send(job: PreparedTrainingJob) -> Any:
        return api.create_training_job(p.PROJECT_ID, job)

    def create(i: int) -> Any:
        return send(make(i))

    if args.scenario == "create":
        return h.run_calls_sync(create, calls=args.calls, threads=args.threads, warmup=args.warmup)

    if args.scenario == "decode":
        import json

        body = h.fetch(args.url + "/v1/training_projects")
        # BasetenApi.list_training_projects() is resp.json()["training_projects"]: plain dicts.
        result = h.run_decode(lambda b: json.loads(b)["training_projects"], body, reps=args.reps)
        result["how"] = "resp.json() (plain dicts, as BasetenApi returns them)"
        result.update(h.run_list_sync(api.list_training_projects, reps=max(3, args.reps // 4)))
        return result

    h.run_calls_sync(create, calls=0, threads=args.threads, warmup=args.warmup)
    api.list_training_jobs(p.PROJECT_ID)
    return h.run_batch_sync(make, send, calls=args.calls, threads=args.threads)


if __name__ == "__main__":
    ARGS = h.parse_args()
    try:
        RESULT = main(ARGS)
    except Exception as exc:
        h.fail(ARGS.label, ARGS.scenario, exc)
    else:
        h.emit({"label": ARGS.label, "scenario": ARGS.scenario, **RESULT})
