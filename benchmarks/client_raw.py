"""Client (2): hand-written minimal aiohttp + stdlib json, one pooled session.

No models, no validation, no retries: the practical floor of this stack, to
which the SDK's overhead is compared.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import _harness as h
import _payloads as p


async def main(args: Any) -> dict[str, Any]:
    import aiohttp

    headers = {"Authorization": "Api-Key bench-key"}
    json_headers = {"Content-Type": "application/json"}
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(args.url, connector=connector, headers=headers) as session:
        create_path = f"/v1/training_projects/{p.PROJECT_ID}/jobs"

        def make(i: int) -> dict[str, Any]:
            return {"training_job": p.spec_dict(i)}

        async def send(payload: dict[str, Any]) -> Any:
            body = json.dumps(payload).encode()
            async with session.post(create_path, data=body, headers=json_headers) as response:
                data = await response.read()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}")
            return json.loads(data)["training_job"]

        async def create(i: int) -> Any:
            return await send(make(i))

        if args.scenario == "create":
            return await h.run_calls_async(
                create, calls=args.calls, concurrency=args.concurrency, warmup=args.warmup
            )

        if args.scenario == "decode":

            async def list_projects() -> list[Any]:
                async with session.get("/v1/training_projects") as response:
                    return json.loads(await response.read())["training_projects"]

            body = h.fetch(args.url + "/v1/training_projects")
            result = h.run_decode(
                lambda b: json.loads(b)["training_projects"], body, reps=args.reps
            )
            result["how"] = "json.loads (plain dicts, no validation)"
            result.update(await h.run_list_async(list_projects, reps=max(3, args.reps // 4)))
            return result

        # create_many equivalent: list the project once, then the same worker pool.
        await h.run_calls_async(create, calls=0, concurrency=args.concurrency, warmup=args.warmup)
        async with session.get(create_path) as response:
            await response.read()
        return await h.run_batch_async(make, send, calls=args.calls, concurrency=args.concurrency)


if __name__ == "__main__":
    ARGS = h.parse_args()
    try:
        RESULT = asyncio.run(main(ARGS))
    except Exception as exc:
        h.fail(ARGS.label, ARGS.scenario, exc)
    else:
        h.emit({"label": ARGS.label, "scenario": ARGS.scenario, **RESULT})
