"""The ``baseten-training`` command line (also ``python -m baseten_training_async``).

Examples::

    baseten-training projects upsert my-project
    baseten-training jobs create PROJECT_ID --image pytorch/pytorch:2.4.0 --accelerator H100:8
    baseten-training jobs create PROJECT_ID --name sft --command "python train.py" --env K=V
    baseten-training jobs create PROJECT_ID --spec job.toml --count 100 --concurrency 16
    baseten-training jobs logs PROJECT_ID JOB_ID --follow
    baseten-training --json jobs list PROJECT_ID
    baseten-training demo            # offline, against the bundled fake API

Results go to stdout (tables, or one JSON document with ``--json``); progress,
notes and errors go to stderr, errors as one line each. See ``--help`` for the
exit codes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

from ._cli._exit import (
    EXIT_CODES_HELP,
    EXIT_USAGE,
    UsageError,
    describe,
    exit_code_for,
)
from ._cli._output import Output, one_line
from ._version import __version__

__all__ = ["build_parser", "main"]

PROG = "baseten-training"


class _Parser(argparse.ArgumentParser):
    """An argument parser whose errors are one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        """Print the usage error as one line and exit with status 2."""
        self.exit(EXIT_USAGE, f"{self.prog}: error: {one_line(message)} (see --help)\n")


_N = TypeVar("_N", int, float)


def _number(
    kind: Callable[[str], _N], noun: str, *, minimum: float, strict: bool
) -> Callable[[str], _N]:
    """An argparse type: ``kind`` parsed from text, at least (or above) ``minimum``."""

    def parse(text: str) -> _N:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {noun}") from None
        if value < minimum or (strict and not value > minimum):
            bound = "above" if strict else "at least"
            raise argparse.ArgumentTypeError(f"{text!r} must be {bound} {minimum:g}")
        return value

    return parse


_positive_int = _number(int, "an integer", minimum=1, strict=False)
_non_negative_int = _number(int, "an integer", minimum=0, strict=False)
_positive_float = _number(float, "a number", minimum=0, strict=True)


def _accelerator(text: str) -> tuple[str, int]:
    from ._cli._spec import parse_accelerator

    try:
        return parse_accelerator(text)
    except UsageError as exc:
        raise argparse.ArgumentTypeError(str(exc).partition(": ")[2]) from None


def _add_global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Global options, accepted before or after the command.

    On subcommands their defaults are suppressed, so a value given before
    the command is not reset by the subcommand's parser.
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--api-key",
        default=default(None),
        metavar="KEY",
        help="API key (default: $BASETEN_API_KEY)",
    )
    group.add_argument(
        "--base-url",
        default=default(None),
        metavar="URL",
        help="API base URL (default: $BASETEN_BASE_URL or https://api.baseten.co)",
    )
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="print results as one JSON document on stdout",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show tracebacks and the SDK's debug log",
    )
    group.add_argument(
        "--request-timeout",
        type=_positive_float,
        default=default(60.0),
        metavar="SECONDS",
        help="per-request timeout (default 60)",
    )
    group.add_argument(
        "--max-retries",
        type=_non_negative_int,
        default=default(4),
        metavar="N",
        help="retries of a failed request (default 4)",
    )
    group.add_argument(
        "--commit-window",
        type=_positive_float,
        default=default(60.0),
        metavar="SECONDS",
        help="how long a create whose answer was lost may still be committed by the server, "
        "before it is sent again (default 60)",
    )


def _job_ids(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project_id", metavar="PROJECT_ID")
    parser.add_argument("job_id", metavar="JOB_ID")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``baseten-training``.

    Returns:
        The parser; parsed arguments carry ``group`` and ``command``.
    """
    parser = _Parser(
        prog=PROG,
        description="Manage Baseten training projects and jobs.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, suppress=False)
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", parser_class=_Parser)

    def leaf(subparsers: argparse._SubParsersAction[_Parser], name: str, help_text: str) -> _Parser:
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        _add_global_options(sub, suppress=True)
        return sub

    # projects
    projects = groups.add_parser("projects", help="training projects")
    p_cmds = projects.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    p_cmds.required = True
    leaf(p_cmds, "list", "list projects")
    upsert = leaf(p_cmds, "upsert", "create a project, or get the one with this name")
    upsert.add_argument("name", metavar="NAME")
    upsert.add_argument("--team-id", help="create it in this team")
    leaf(p_cmds, "get", "show a project").add_argument("project_id", metavar="ID")
    leaf(p_cmds, "delete", "delete a project").add_argument("project_id", metavar="ID")

    # jobs
    jobs = groups.add_parser("jobs", help="training jobs")
    j_cmds = jobs.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    j_cmds.required = True
    create = leaf(j_cmds, "create", "create jobs from a spec file and/or flags")
    create.add_argument("project_id", metavar="PROJECT_ID")
    create.add_argument(
        "--spec",
        metavar="FILE",
        help="spec file: .json, .toml, or .yaml/.yml (needs PyYAML); '-' reads JSON from stdin",
    )
    spec = create.add_argument_group("spec flags (override the spec file)")
    spec.add_argument("--name", help="job name (with --count > 1: NAME-0001, NAME-0002, ...)")
    spec.add_argument("--image", metavar="IMAGE", help="base image")
    spec.add_argument(
        "--accelerator", type=_accelerator, metavar="TYPE[:COUNT]", help="GPUs, e.g. H100:8"
    )
    spec.add_argument("--nodes", type=_positive_int, metavar="N", help="node count")
    spec.add_argument("--cpu", type=_positive_int, metavar="N", help="CPUs per node")
    spec.add_argument("--memory", metavar="SIZE", help="memory per node, e.g. 64Gi")
    spec.add_argument(
        "--command",
        action="append",
        dest="start_commands",
        metavar="CMD",
        help="start command (repeatable)",
    )
    spec.add_argument(
        "--env", action="append", metavar="KEY=VALUE", help="environment variable (repeatable)"
    )
    fan = create.add_argument_group("fan-out")
    fan.add_argument(
        "--count", type=_positive_int, metavar="N", help="create N jobs (via create_many)"
    )
    fan.add_argument(
        "--concurrency", type=_positive_int, default=16, metavar="C", help="workers (default 16)"
    )
    _job_ids(leaf(j_cmds, "recreate", "start a new job with an existing job's configuration"))
    _job_ids(leaf(j_cmds, "get", "show a job"))
    leaf(j_cmds, "list", "list a project's jobs").add_argument("project_id", metavar="PROJECT_ID")
    search = leaf(j_cmds, "search", "search jobs across projects")
    search.add_argument("--project-id", help="only this project")
    search.add_argument("--job-id", help="only this job")
    search.add_argument(
        "--status",
        action="append",
        metavar="STATUS",
        help="only this status, e.g. RUNNING (repeatable)",
    )
    search.add_argument("--order", choices=("asc", "desc"), default="desc", help="by creation")
    _job_ids(leaf(j_cmds, "stop", "stop a job"))
    _job_ids(leaf(j_cmds, "delete", "delete a job"))
    wait = leaf(j_cmds, "wait", "wait for a job to finish (exit 1 unless it completed)")
    _job_ids(wait)
    wait.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="give up after this long (exit 1)",
    )
    wait.add_argument(
        "--poll-interval", type=_positive_float, default=10.0, metavar="SECONDS", help="(10)"
    )
    logs = leaf(j_cmds, "logs", "print a job's logs")
    _job_ids(logs)
    logs.add_argument("--follow", "-f", action="store_true", help="until the job finishes")
    logs.add_argument(
        "--min-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="lowest level shown"
    )
    logs.add_argument(
        "--poll-interval", type=_positive_float, default=2.0, metavar="SECONDS", help="(2)"
    )

    # offline
    fake = leaf(groups, "fake-server", "serve the bundled fake Training API (no key needed)")
    fake.add_argument("--host", default="127.0.0.1", help="interface (default 127.0.0.1)")
    fake.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one")
    fake.add_argument("--seed", type=int, default=0, help="seed of ids and faults")
    fake.add_argument("--rate-limit", type=_positive_float, metavar="RPS", help="req/s per key")
    fake.add_argument(
        "--speed", type=_positive_float, default=1.0, help="fake seconds per real second"
    )
    fake.add_argument(
        "--job-seconds", type=_positive_float, default=10.0, help="seconds a job runs (10)"
    )
    demo = leaf(groups, "demo", "fan out jobs against an in-process fake API with faults")
    demo.add_argument("--count", type=_positive_int, default=300, help="jobs (default 300)")
    demo.add_argument("--concurrency", type=_positive_int, default=32, help="workers (32)")
    demo.add_argument("--seed", type=int, default=42, help="seed of ids and faults")
    demo.add_argument(
        "--rate-limit", type=_positive_float, default=100.0, metavar="RPS", help="(100)"
    )
    demo.add_argument(
        "--speed", type=_positive_float, default=5.0, help="fake seconds per real second (5)"
    )
    demo.add_argument("--no-faults", action="store_true", help="no injected faults")
    demo.add_argument("--no-follow", action="store_true", help="skip following a job's logs")
    return parser


async def _run(args: argparse.Namespace, out: Output) -> int:
    group: str = args.group
    command: str = getattr(args, "command", "")
    if group == "fake-server":
        from ._cli._fake import fake_server

        return await fake_server(args, out)
    if group == "demo":
        from ._cli._fake import demo

        return await demo(args, out)
    from ._cli._commands import COMMANDS, PREPARE
    from ._client import AsyncTrainingClient

    handler = COMMANDS[(group, command)]
    prepare = PREPARE.get((group, command))
    if prepare is not None:
        prepare(args)
    api_key = args.api_key if args.api_key is not None else os.environ.get("BASETEN_API_KEY")
    async with AsyncTrainingClient(
        api_key,
        base_url=args.base_url,
        timeout=args.request_timeout,
        max_retries=args.max_retries,
        commit_window=args.commit_window,
    ) as client:
        return await handler(args, client, out)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit code (see ``--help``).
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.group is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.debug:
        logging.basicConfig(
            level=logging.DEBUG, format="%(asctime)s %(name)s %(levelname)s %(message)s"
        )
    out = Output(json_mode=args.json)
    try:
        return asyncio.run(_run(args, out))
    except (KeyboardInterrupt, asyncio.CancelledError) as exc:
        if args.debug:
            traceback.print_exc()
        out.note("interrupted")
        return exit_code_for(exc)
    except BrokenPipeError:
        # Output piped into something that stopped reading (e.g. `| head`).
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141
    except Exception as exc:
        if args.debug:
            traceback.print_exc()
        out.note(f"error: {describe(exc)}")
        return exit_code_for(exc)
