"""A canned Training API server for the benchmarks: fixed bodies, optional latency.

Run in its own process so that its CPU time is not charged to the client
being measured. Binds 127.0.0.1 only, prints ``PORT <n>`` once listening, and
stops on SIGTERM/SIGINT or after ``--max-seconds`` at the latest.

    python benchmarks/server.py --latency-ms 50
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable

import _payloads as payloads
from aiohttp import web

_JSON = "application/json"
Handler = Callable[[web.Request], Awaitable[web.Response]]


def make_app(latency: float) -> web.Application:
    bodies = {
        "create_job": payloads.create_job_body(),
        "projects": payloads.projects_body(),
        "project": payloads.project_body(),
        "jobs": payloads.jobs_body(),
        "job": payloads.get_job_body(),
        "search": payloads.search_body(),
    }
    counts = dict.fromkeys(bodies, 0)

    def canned(key: str, *, read_body: bool = False) -> Handler:
        body = bodies[key]

        async def handler(request: web.Request) -> web.Response:
            if read_body:
                await request.read()
            if latency:
                await asyncio.sleep(latency)
            counts[key] += 1
            return web.Response(body=body, content_type=_JSON)

        return handler

    async def stats(request: web.Request) -> web.Response:
        return web.json_response(counts)

    app = web.Application()
    app.router.add_post("/v1/training_projects/{pid}/jobs", canned("create_job", read_body=True))
    app.router.add_get("/v1/training_projects", canned("projects"))
    app.router.add_post("/v1/training_projects", canned("project", read_body=True))
    app.router.add_get("/v1/training_projects/{pid}", canned("project"))
    app.router.add_get("/v1/training_projects/{pid}/jobs", canned("jobs"))
    app.router.add_get("/v1/training_projects/{pid}/jobs/{jid}", canned("job"))
    app.router.add_post("/v1/training_jobs/search", canned("search", read_body=True))
    app.router.add_get("/_stats", stats)
    return app


async def serve(port: int, latency: float, max_seconds: float) -> None:
    runner = web.AppRunner(make_app(latency), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=1024)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"PORT {bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await asyncio.wait_for(stop.wait(), timeout=max_seconds)
    except TimeoutError:
        print("server: --max-seconds reached, stopping", file=sys.stderr)
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency-ms", type=float, default=0.0)
    parser.add_argument("--max-seconds", type=float, default=1800.0)
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.latency_ms / 1000.0, args.max_seconds))


if __name__ == "__main__":
    main()
