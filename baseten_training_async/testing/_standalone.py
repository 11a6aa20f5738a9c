"""The standalone fake server's command line, shared by ``python -m ...testing`` and the CLI.

`add_fake_server_arguments` declares the flags once; `standalone_api` builds the
server from them. Both ``baseten-training fake-server`` and
``python -m baseten_training_async.testing`` use the two, so they take the same flags.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import signal
from collections.abc import Callable, Iterator

from ._clock import FakeClock
from ._models import JobTimings
from ._server import FakeTrainingAPI

__all__ = ["DEFAULT_API_KEY", "add_fake_server_arguments", "standalone_api", "stop_on_signals"]

DEFAULT_API_KEY = "fake-api-key"
"""The key the standalone server accepts unless ``--api-key`` says otherwise."""


def _number(
    kind: Callable[[str], float], what: str, *, minimum: float, strict: bool
) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if not math.isfinite(value) or value < minimum or (strict and value == minimum):
            bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
            raise argparse.ArgumentTypeError(f"expected {what} {bound}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in its messages
    return parse


_port = _number(int, "a port", minimum=0, strict=False)
_positive = _number(float, "a number", minimum=0, strict=True)
_positive_int = _number(int, "an integer", minimum=1, strict=False)
_non_negative_int = _number(int, "an integer", minimum=0, strict=False)


def add_fake_server_arguments(parser: argparse.ArgumentParser, *, api_key: bool = True) -> None:
    """Declare the standalone fake server's flags on a parser.

    Args:
        parser: The parser (or subcommand parser) to extend.
        api_key: Add ``--api-key`` too (off where the caller declares it already,
            like the CLI's global option).
    """
    parser.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=8000, help="port; 0 picks a free one")
    if api_key:
        parser.add_argument(
            "--api-key", default=DEFAULT_API_KEY, help=f"accepted API key ({DEFAULT_API_KEY})"
        )
    parser.add_argument("--seed", type=int, default=0, help="seed of ids and faults (0)")
    parser.add_argument(
        "--rate-limit", type=_positive, default=None, metavar="RPS", help="requests/s per key"
    )
    parser.add_argument(
        "--rate-burst", type=_positive_int, default=None, metavar="N", help="token bucket size"
    )
    parser.add_argument(
        "--capacity", type=_non_negative_int, default=None, metavar="N", help="max active jobs"
    )
    parser.add_argument(
        "--speed", type=_positive, default=1.0, help="fake seconds per real second (1)"
    )
    parser.add_argument(
        "--job-seconds", type=_positive, default=10.0, help="seconds a job spends RUNNING (10)"
    )


def standalone_api(args: argparse.Namespace) -> FakeTrainingAPI:
    """Build the fake from parsed `add_fake_server_arguments` flags.

    A real-time clock at ``--speed``, and a bounded request log for long runs.

    Args:
        args: The parsed flags (``api_key`` None or empty means `DEFAULT_API_KEY`).

    Returns:
        The server, not started.
    """
    return FakeTrainingAPI(
        api_key=getattr(args, "api_key", None) or DEFAULT_API_KEY,
        seed=args.seed,
        rate_limit=args.rate_limit,
        rate_burst=args.rate_burst,
        capacity=args.capacity,
        clock=FakeClock.real(speed=args.speed),
        host=args.host,
        port=args.port,
        timings=JobTimings(running=args.job_seconds),
        request_log_limit=10_000,
    )


@contextlib.contextmanager
def stop_on_signals(stop: asyncio.Event) -> Iterator[None]:
    """Set ``stop`` on SIGINT/SIGTERM while inside the block.

    Platforms without signal handlers in the loop (add_signal_handler raises
    NotImplementedError there) fall back to KeyboardInterrupt.

    Args:
        stop: The event to set.

    Yields:
        Nothing; the handlers are removed on exit.
    """
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)
