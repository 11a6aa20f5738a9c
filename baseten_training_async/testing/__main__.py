"""Run the fake Baseten Training API standalone: ``python -m baseten_training_async.testing``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence

from ._standalone import standalone_api, stop_on_signals


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m baseten_training_async.testing",
        description="Serve an in-memory fake of the Baseten Training API until Ctrl-C.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    parser.add_argument("--api-key", default="fake-api-key", help="accepted API key")
    parser.add_argument("--seed", type=int, default=0, help="seed of ids and faults")
    parser.add_argument("--rate-limit", type=float, default=None, help="requests/s per key")
    parser.add_argument("--rate-burst", type=int, default=None, help="token bucket size")
    parser.add_argument("--capacity", type=int, default=None, help="max active jobs")
    parser.add_argument(
        "--speed", type=float, default=1.0, help="fake seconds per real second (default 1)"
    )
    parser.add_argument(
        "--job-seconds",
        type=float,
        default=10.0,
        help="seconds a job spends RUNNING (default 10)",
    )
    return parser


async def _serve(args: argparse.Namespace) -> None:
    api = standalone_api(
        api_key=args.api_key,
        seed=args.seed,
        host=args.host,
        port=args.port,
        speed=args.speed,
        job_seconds=args.job_seconds,
        rate_limit=args.rate_limit,
        rate_burst=args.rate_burst,
        capacity=args.capacity,
    )
    stop = asyncio.Event()
    with stop_on_signals(stop):
        async with api:
            print(f"Fake Baseten Training API listening on {api.url}", flush=True)
            print(f"API key: {api.api_key}", flush=True)
            print(f"export BASETEN_BASE_URL={api.url} BASETEN_API_KEY={api.api_key}", flush=True)
            await stop.wait()
    print("Stopped.", flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse arguments and serve until interrupted.

    Args:
        argv: Command-line arguments (default ``sys.argv[1:]``).

    Returns:
        The exit status.
    """
    args = _parser().parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
