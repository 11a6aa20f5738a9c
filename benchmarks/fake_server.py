"""The bundled fake Training API with jobs that run, for the watch benchmark.

Starts `FakeTrainingAPI` on a real-time clock in its own process (so its CPU is
not charged to the client measured), creates ``--jobs`` jobs in one project,
writes their ids to ``--jobs-file``, prints ``PORT <n> PROJECT <id>`` and
serves until SIGTERM/SIGINT or ``--max-seconds``.

    python benchmarks/fake_server.py --jobs 1000 --jobs-file /tmp/ids --job-seconds 17
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from baseten_training_async.testing import FakeClock, FakeTrainingAPI, JobTimings


async def serve(args: argparse.Namespace) -> None:
    api = FakeTrainingAPI(
        api_key="bench-key",
        clock=FakeClock.real(speed=1.0),
        timings=JobTimings(created=1.0, deploying=2.0, running=args.job_seconds),
        log_every=None,
        request_log_limit=1000,
    )
    await api.start()
    try:
        project = api.add_project("watched")
        ids = [
            api.add_job(project.id, {"name": f"job-{i}", "image": {"base_image": "x"}}).id
            for i in range(args.jobs)
        ]
        await asyncio.to_thread(Path(args.jobs_file).write_text, "\n".join(ids))
        port = api.url.rsplit(":", 1)[1]
        print(f"PORT {port} PROJECT {project.id}", flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await asyncio.wait_for(stop.wait(), timeout=args.max_seconds)
        except TimeoutError:
            print("fake_server: --max-seconds reached, stopping", file=sys.stderr)
    finally:
        await api.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--jobs-file", required=True)
    parser.add_argument("--job-seconds", type=float, default=17.0)
    parser.add_argument("--max-seconds", type=float, default=600.0)
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
