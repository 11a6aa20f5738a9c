"""Run the fake Baseten Training API standalone: ``python -m baseten_training_async.testing``."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Sequence

from ._standalone import add_fake_server_arguments, standalone_api, stop_on_signals


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m baseten_training_async.testing",
        description="Serve an in-memory fake of the Baseten Training API until Ctrl-C.",
    )
    add_fake_server_arguments(parser)
    return parser


async def _serve(args: argparse.Namespace) -> None:
    api = standalone_api(args)
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
