"""The ``baseten-training`` command line (also ``python -m baseten_training_async``).

Examples::

    baseten-training projects upsert my-project
    baseten-training jobs create my-project --name sft --image pytorch/pytorch:2.4.0 \
        --accelerator H100:8 --command "python train.py" --env K=V
    baseten-training jobs create my-project --spec job.yaml --name sweep --count 100
    baseten-training --json jobs logs my-project JOB_ID --follow   # JSON lines
    baseten-training jobs metrics my-project JOB_ID --chart
    baseten-training --profile staging jobs list my-project
    baseten-training demo            # offline, against the bundled fake API

Results go to stdout (tables, or JSON with ``--json``: one document, or one
object per line for streams); progress, notes and errors go to stderr, errors
as one line each. See ``--help`` for the exit codes.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import traceback
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, NoReturn, TypeVar

from ._cli._config import Settings, config_path, resolve_settings
from ._cli._exit import (
    EXIT_CODES_HELP,
    EXIT_USAGE,
    CommandInterrupted,
    UsageError,
    describe,
    exit_code_for,
)
from ._cli._output import Output, one_line
from ._version import __version__

__all__ = ["build_parser", "main"]

if TYPE_CHECKING:
    _Subparsers = argparse._SubParsersAction["_Parser"]

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
    the command is not reset by the subcommand's parser. Connection settings
    default to None here: flags win over the environment, which wins over the
    profile (see `resolve_settings`).
    """

    def default(value: object) -> object:
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("global options")
    group.add_argument(
        "--profile",
        default=default(None),
        metavar="NAME",
        help="settings from this profile of the config file (default: $BASETEN_PROFILE)",
    )
    group.add_argument(
        "--api-key",
        default=default(None),
        metavar="KEY",
        help="API key (default: $BASETEN_API_KEY, then the profile)",
    )
    group.add_argument(
        "--base-url",
        default=default(None),
        metavar="URL",
        help="API base URL (default: $BASETEN_BASE_URL, the profile, https://api.baseten.co)",
    )
    _add_output_options(group, default)
    group.add_argument(
        "--request-timeout",
        type=_positive_float,
        default=default(None),
        metavar="SECONDS",
        help="per-request timeout (default 60)",
    )
    group.add_argument(
        "--max-retries",
        type=_non_negative_int,
        default=default(None),
        metavar="N",
        help="retries of a failed request (default 4)",
    )
    group.add_argument(
        "--commit-window",
        type=_positive_float,
        default=default(None),
        metavar="SECONDS",
        help="how long a create whose answer was lost may still be committed by the server, "
        "before it is sent again (default 60)",
    )


def _add_output_options(
    group: argparse._ArgumentGroup, default: Callable[[object], object]
) -> None:
    group.add_argument(
        "--json",
        action="store_true",
        default=default(False),
        help="results as JSON on stdout (streams: one object per line)",
    )
    group.add_argument(
        "--debug",
        action="store_true",
        default=default(False),
        help="show tracebacks and the SDK's debug log",
    )
    group.add_argument(
        "--verbose",
        action="store_true",
        default=default(False),
        help="show each retry and reconciliation as it happens",
    )


def _leaf(
    subparsers: _Subparsers,
    name: str,
    help_text: str,
    *,
    aliases: Sequence[str] = (),
    command: str | None = None,
    offline: bool = False,
) -> _Parser:
    """A command's parser; ``command`` (default ``name``) is the SDK method it runs."""
    sub: _Parser = subparsers.add_parser(
        name, help=help_text, description=help_text, aliases=list(aliases)
    )
    if offline:
        group = sub.add_argument_group("global options")
        _add_output_options(group, lambda _: argparse.SUPPRESS)
    else:
        _add_global_options(sub, suppress=True)
    sub.set_defaults(command=command or name)
    return sub


def _project_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("project", metavar="PROJECT", help="project name or id")


def _job_args(parser: argparse.ArgumentParser) -> None:
    _project_arg(parser)
    parser.add_argument("job_id", metavar="JOB_ID")


def _projects_parser(groups: _Subparsers) -> None:
    projects = groups.add_parser("projects", help="training projects")
    cmds = projects.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    cmds.required = True
    _leaf(cmds, "list", "list projects")
    upsert = _leaf(cmds, "upsert", "create a project, or get the one with this name")
    upsert.add_argument("name", metavar="NAME")
    upsert.add_argument("--team-id", help="create it in this team")
    _project_arg(_leaf(cmds, "retrieve", "show a project", aliases=["get"]))
    _project_arg(_leaf(cmds, "delete", "delete a project"))
    _project_arg(
        _leaf(
            cmds,
            "cache-summary",
            "list the files in a project's cache",
            aliases=["cache_summary"],
            command="cache_summary",
        )
    )


def _create_parser(cmds: _Subparsers) -> None:
    create = _leaf(cmds, "create", "create jobs from a spec file and/or flags")
    _project_arg(create)
    create.add_argument(
        "--spec",
        metavar="FILE",
        help="spec file: .json, .toml, .yaml or .yml; '-' reads JSON from stdin",
    )
    spec = create.add_argument_group("spec flags (override the spec file)")
    spec.add_argument("--name", help="job name (with --count: NAME-0001, NAME-0002, ...)")
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
    safety = create.add_argument_group("never a second job")
    safety.add_argument(
        "--no-adopt",
        dest="adopt",
        action="store_false",
        help="create even when a job of this name exists (default: adopt it, so a re-run "
        "after Ctrl-C or a crash creates only what is missing)",
    )
    safety.add_argument(
        "--allow-unnamed",
        action="store_true",
        help="create without --name (such a job cannot be found again after a lost response)",
    )
    fan = create.add_argument_group("fan-out")
    fan.add_argument(
        "--count", type=_positive_int, metavar="N", help="create N jobs (via create_many)"
    )
    fan.add_argument(
        "--concurrency", type=_positive_int, default=16, metavar="C", help="workers (default 16)"
    )


def _wait_parsers(cmds: _Subparsers) -> None:
    """``jobs wait``, ``jobs watch`` and ``jobs supervise``: the shared poller's commands."""
    poll_help = "poll at least this often (default: adaptive, one listing shared by all jobs)"
    wait = _leaf(cmds, "wait", "wait for a job to finish (exit 1 unless it completed)")
    _job_args(wait)
    wait.add_argument(
        "--timeout",
        type=_positive_float,
        metavar="SECONDS",
        help="give up after this long (exit 1)",
    )
    wait.add_argument(
        "--on-timeout",
        choices=("raise", "stop"),
        default="raise",
        help="when a limit passes: give up (raise, default) or stop the job (stop)",
    )
    wait.add_argument(
        "--max-pending",
        type=_positive_float,
        metavar="SECONDS",
        help="longest the job may take to start running",
    )
    wait.add_argument(
        "--max-running", type=_positive_float, metavar="SECONDS", help="longest the job may run"
    )
    wait.add_argument(
        "--log-tail",
        type=_non_negative_int,
        default=0,
        metavar="N",
        help="if the job fails, print its last N log lines (up to 1000)",
    )
    wait.add_argument("--poll-interval", type=_positive_float, metavar="SECONDS", help=poll_help)
    watch = _leaf(
        cmds,
        "watch",
        "a live table of job statuses (--json: one object per change per line)",
    )
    _project_arg(watch)
    watch.add_argument(
        "job_ids",
        nargs="*",
        metavar="JOB_ID",
        help="only these jobs, until all finish (default: every job, until Ctrl-C)",
    )
    watch.add_argument("--poll-interval", type=_positive_float, metavar="SECONDS", help=poll_help)
    supervise = _leaf(
        cmds,
        "supervise",
        "launch jobs from a spec file, see them through and relaunch preempted ones",
    )
    _project_arg(supervise)
    supervise.add_argument(
        "spec_file",
        metavar="SPEC_FILE",
        help="spec file: .json, .toml, .yaml or .yml; '-' reads JSON from stdin",
    )
    supervise.add_argument(
        "--count", type=_positive_int, default=1, metavar="N", help="runs (NAME-0001, ...; 1)"
    )
    supervise.add_argument("--name", metavar="PREFIX", help="job name (default: the spec's)")
    supervise.add_argument(
        "--max-attempts",
        type=_positive_int,
        default=3,
        metavar="K",
        help="launches per run, the first included (3)",
    )
    supervise.add_argument(
        "--relaunch-on",
        action="append",
        metavar="STATUS",
        help="final status that earns a relaunch (repeatable; default PREEMPTED)",
    )
    supervise.add_argument(
        "--no-resume",
        dest="resume",
        action="store_false",
        help="relaunch from scratch, not from the latest checkpoint",
    )
    supervise.add_argument(
        "--concurrency", type=_positive_int, default=32, metavar="C", help="creates at once (32)"
    )
    supervise.add_argument(
        "--poll-interval", type=_positive_float, metavar="SECONDS", help=poll_help
    )


def _jobs_parser(groups: _Subparsers) -> None:
    jobs = groups.add_parser("jobs", help="training jobs")
    cmds = jobs.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    cmds.required = True
    _create_parser(cmds)
    _job_args(
        _leaf(
            cmds,
            "recreate",
            "start a new job with an existing job's configuration (and name: the API "
            "cannot rename it)",
        )
    )
    _job_args(_leaf(cmds, "retrieve", "show a job", aliases=["get"]))
    _leaf(cmds, "find", "show a job by its id alone, whatever its project").add_argument(
        "job_id", metavar="JOB_ID"
    )
    _project_arg(_leaf(cmds, "list", "list a project's jobs"))
    search = _leaf(cmds, "search", "search jobs across projects")
    search.add_argument("--project", "--project-id", metavar="PROJECT", help="name or id")
    search.add_argument("--job-id", help="only this job")
    search.add_argument(
        "--status",
        action="append",
        metavar="STATUS",
        help="only this status, e.g. RUNNING (repeatable)",
    )
    search.add_argument("--order", choices=("asc", "desc"), default="desc", help="by creation")
    stop = _leaf(cmds, "stop", "stop a job (exit 1 if it had already finished)")
    _job_args(stop)
    stop.add_argument(
        "--ok-if-done", action="store_true", help="exit 0 when the job had already finished"
    )
    _job_args(_leaf(cmds, "delete", "delete a job"))
    update = _leaf(cmds, "update", "change a pending job's queue priority")
    _job_args(update)
    update.add_argument("--priority", type=int, metavar="N", help="higher goes first")
    update.add_argument(
        "--availability", metavar="MODEL", help="capacity to schedule on, e.g. spot, dedicated"
    )
    _wait_parsers(cmds)
    logs = _leaf(cmds, "logs", "print a job's logs (--json: one object per line)")
    _job_args(logs)
    logs.add_argument("--follow", "-f", action="store_true", help="until the job finishes")
    logs.add_argument(
        "--min-level", choices=("DEBUG", "INFO", "WARNING", "ERROR"), help="lowest level shown"
    )
    logs.add_argument(
        "--poll-interval", type=_positive_float, default=2.0, metavar="SECONDS", help="(2)"
    )
    metrics = _leaf(cmds, "metrics", "CPU, GPU and storage use: latest values, or --chart")
    _job_args(metrics)
    metrics.add_argument("--since", metavar="TIME", help="ISO time or age (30m, 6h, 2d)")
    metrics.add_argument("--until", metavar="TIME", help="ISO time or age")
    metrics.add_argument("--step", type=_positive_int, metavar="SECONDS", help="sample step")
    metrics.add_argument("--chart", action="store_true", help="draw each series over time")
    metrics.add_argument(
        "--width", type=_positive_int, default=60, metavar="N", help="chart width (60)"
    )
    _job_args(_leaf(cmds, "checkpoints", "list a job's checkpoints"))
    files = _leaf(
        cmds,
        "checkpoint-files",
        "list a job's checkpoint files, or --download them (resumable)",
        aliases=["checkpoint_files"],
        command="checkpoint_files",
    )
    _job_args(files)
    files.add_argument("--download", metavar="DIR", help="download every file into DIR")
    files.add_argument(
        "--concurrency", type=_positive_int, default=4, metavar="N", help="parallel files (4)"
    )
    files.add_argument(
        "--page-size", type=_positive_int, default=1000, metavar="N", help="listing page size"
    )
    _job_args(
        _leaf(
            cmds,
            "download-urls",
            "print presigned URLs of a job's artifacts",
            aliases=["download_urls"],
            command="download_urls",
        )
    )
    _leaf(cmds, "capacity", "GPU capacity available for training")
    _leaf(
        cmds,
        "queue-context",
        "why a job waits in the queue",
        aliases=["queue_context"],
        command="queue_context",
    ).add_argument("job_id", metavar="JOB_ID")


def _more_parsers(groups: _Subparsers) -> None:
    """teams, capacity, sessions and artifacts: the SDK's other resources."""

    def group(name: str, help_text: str) -> _Subparsers:
        cmds = groups.add_parser(name, help=help_text).add_subparsers(
            dest="command", metavar="COMMAND", parser_class=_Parser
        )
        cmds.required = True
        return cmds

    _leaf(group("teams", "the organisation's teams"), "list", "list teams")
    capacity = group("capacity", "GPU capacity for training, per type and team")
    _leaf(capacity, "retrieve", "GPU limits and usage", aliases=["get"])
    update = _leaf(capacity, "update", "set a team's limit for one GPU type")
    update.add_argument("--team-id", required=True)
    update.add_argument("--gpu-type", required=True, metavar="TYPE", help="e.g. H100")
    update.add_argument("--max-gpus", required=True, type=_non_negative_int, metavar="N")
    sessions = group("sessions", "interactive sessions of jobs")
    _job_args(
        _leaf(
            sessions,
            "auth-codes",
            "sign-in codes of a job's sessions",
            aliases=["auth_codes"],
            command="auth_codes",
        )
    )
    s_update = _leaf(sessions, "update", "extend a session or change when it is created")
    _job_args(s_update)
    s_update.add_argument("session_id", metavar="SESSION_ID")
    s_update.add_argument(
        "--timeout-minutes", type=int, metavar="N", help="minutes to add; -1: never time out"
    )
    s_update.add_argument("--trigger", metavar="WHEN", help="when to create it")
    sign = _leaf(
        sessions,
        "sign-ssh-key",
        "sign an SSH public key for a session",
        aliases=["sign_ssh_key"],
        command="sign_ssh_key",
    )
    _job_args(sign)
    sign.add_argument(
        "--public-key", required=True, metavar="FILE", help="e.g. ~/.ssh/id_ed25519.pub"
    )
    sign.add_argument("--replica", metavar="ID", help="replica to connect to")
    artifacts = group("artifacts", "training artifacts")
    _leaf(
        artifacts,
        "upload-credentials",
        "temporary credentials to upload artifacts (--json)",
        aliases=["upload_credentials"],
        command="upload_credentials",
    )


def _offline_parsers(groups: _Subparsers) -> None:
    fake = _leaf(groups, "fake-server", "serve the bundled fake Training API (no key needed)")
    # The same flags as `python -m baseten_training_async.testing` (one declaration);
    # --api-key is the global option here.
    from .testing._standalone import add_fake_server_arguments

    add_fake_server_arguments(fake, api_key=False)
    demo = _leaf(
        groups, "demo", "fan out jobs against an in-process fake API with faults", offline=True
    )
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
    completion = _leaf(groups, "completion", "print a shell completion script", offline=True)
    completion.add_argument("shell", choices=("bash", "zsh", "fish"))
    config = groups.add_parser("config", help="the config file and its profiles")
    cfg = config.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    cfg.required = True
    _leaf(cfg, "path", "print where the config file is read from", offline=True)
    _leaf(cfg, "show", "show the settings a command would use, and where each comes from")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``baseten-training``.

    Returns:
        The parser; parsed arguments carry ``group`` and ``command``.
    """
    parser = _Parser(
        prog=PROG,
        description="Manage Baseten training projects and jobs. PROJECT is a name or an id.",
        epilog=EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _add_global_options(parser, suppress=False)
    groups = parser.add_subparsers(dest="group", metavar="COMMAND", parser_class=_Parser)
    _projects_parser(groups)
    _jobs_parser(groups)
    _more_parsers(groups)
    _offline_parsers(groups)
    return parser


def _settings(args: argparse.Namespace) -> Settings:
    return resolve_settings(
        profile_name=getattr(args, "profile", None),
        api_key=getattr(args, "api_key", None),
        base_url=getattr(args, "base_url", None),
        request_timeout=getattr(args, "request_timeout", None),
        max_retries=getattr(args, "max_retries", None),
        commit_window=getattr(args, "commit_window", None),
    )


async def _run(args: argparse.Namespace, out: Output) -> int:
    group: str = args.group
    command: str = getattr(args, "command", "")
    if group == "fake-server":
        from ._cli._fake import fake_server

        return await fake_server(args, out)
    if group == "demo":
        from ._cli._fake import demo

        if args.api_key is not None or args.base_url is not None or args.profile is not None:
            raise UsageError(
                "demo runs against its own in-process fake API: "
                "--api-key, --base-url and --profile do not apply"
            )
        return await demo(args, out)
    if group == "completion":
        from ._cli._completion import completion_script

        out.line(completion_script(args.shell, build_parser()))
        return 0
    if group == "config":
        return _config_command(command, args, out)
    from . import AsyncTrainingClient
    from ._cli._commands import COMMANDS, PREPARE

    handler = COMMANDS[(group, command)]
    prepare = PREPARE.get((group, command))
    if prepare is not None:
        prepare(args, out)
    settings = _settings(args)
    async with AsyncTrainingClient(
        settings.api_key,
        base_url=settings.base_url,
        timeout=settings.request_timeout,
        max_retries=settings.max_retries,
        commit_window=settings.commit_window,
    ) as client:
        return await handler(args, client, out)


def _config_command(command: str, args: argparse.Namespace, out: Output) -> int:
    if command == "path":
        out.line(str(config_path()))
        return 0
    settings = _settings(args)
    key = settings.api_key
    shown = {
        "profile": settings.profile,
        "api_key": None if key is None else f"{key[:4]}..." if len(key) > 8 else "***",
        "base_url": settings.base_url or "https://api.baseten.co",
        "request_timeout": settings.request_timeout,
        "max_retries": settings.max_retries,
        "commit_window": settings.commit_window,
    }
    if out.json_mode:
        out.json({"config_file": str(config_path()), **shown, "sources": settings.sources})
        return 0
    pairs = [("config file", str(config_path())), ("profile", settings.profile or "(none)")]
    for name in ("api_key", "base_url", "request_timeout", "max_retries", "commit_window"):
        value = shown[name]
        pairs.append((name, f"{'(unset)' if value is None else value}  [{settings.sources[name]}]"))
    out.details(pairs)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line.

    Args:
        argv: Arguments without the program name (default ``sys.argv[1:]``).

    Returns:
        The exit code (see ``--help``).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv
    if args.group is None:
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    if args.debug or args.verbose:
        logging.basicConfig(format="%(asctime)s %(name)s %(levelname)s %(message)s")
        level = logging.DEBUG if args.debug else logging.INFO
        logging.getLogger("baseten_training_async").setLevel(level)
    out = Output(json_mode=args.json)
    try:
        return asyncio.run(_run(args, out))
    except (KeyboardInterrupt, asyncio.CancelledError) as exc:
        if args.debug:
            traceback.print_exc()
        out.note("interrupted")
        return exit_code_for(exc)
    except CommandInterrupted as exc:
        out.note(one_line(str(exc)))
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
