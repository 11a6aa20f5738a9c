"""Terminal output: sanitising server text, tables, progress bars and ``--json``.

rich is optional (the ``cli`` extra). It is imported lazily, and only used when
the stream it would draw on is a terminal; otherwise, and when rich is not
installed, output is plain aligned text that is easy to grep and diff.
"""

from __future__ import annotations

import re
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TextIO

import msgspec

from .. import JobStatus, LogLine, TrainingJob, TrainingProject

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "Output",
    "ProgressFn",
    "clean",
    "format_log_line",
    "human_bytes",
    "job_details",
    "job_rows",
    "one_line",
    "project_details",
    "project_rows",
    "short_status",
    "short_time",
    "status_style",
]

ProgressFn = Callable[[int, int, "int | None"], object]
"""``on_progress(done, failed, total)``, as ``create_many`` calls it."""

# Terminal control sequences: CSI (incl. 8-bit), OSC / DCS / SOS / PM / APC strings
# (to their terminator or the end of the text) and the other two-byte escapes.
_ESCAPES: Final = re.compile(
    r"""
      \x1b\[[0-?]*[\x20-/]*[@-~]?
    | \x9b[0-?]*[\x20-/]*[@-~]?
    | \x1b\][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?
    | [\x1b][PX^_][^\x1b\x9c]*(?:\x1b\\|\x9c)?
    | [\x90\x98\x9d\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?
    | \x1b[\x20-/]*[0-~]?
    """,
    re.VERBOSE,
)
# What is left: C0 controls except tab and newline, DEL, C1 controls, and the
# Unicode bidi overrides that make text display differently from what it is.
_CONTROLS: Final = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_WHITESPACE: Final = re.compile(r"\s+")
_STATUS_PREFIX: Final = "TRAINING_JOB_"
_STATUS_STYLES: Final = {
    JobStatus.COMPLETED: "green",
    JobStatus.FAILED: "red",
    JobStatus.DEPLOY_FAILED: "red",
    JobStatus.STOPPED: "dim",
    JobStatus.PREEMPTED: "magenta",
}


def clean(text: str) -> str:
    """Remove terminal control sequences and control characters from untrusted text.

    Newlines and tabs are kept; everything else below U+0020 (and DEL, the C1
    range and bidi overrides) is dropped, as are whole ANSI escape sequences,
    so server-provided text cannot move the cursor, retitle the window, hide
    lines or fake colours.

    Args:
        text: Text that came from the server.

    Returns:
        The text, safe to print.
    """
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


def one_line(text: str) -> str:
    """Like `clean`, and collapse all whitespace (newlines too) to single spaces.

    Args:
        text: Untrusted text, e.g. an error message.

    Returns:
        One printable line.
    """
    return _WHITESPACE.sub(" ", clean(text)).strip()


def status_style(status: str) -> str:
    """The rich style a job status is shown in on terminals.

    Args:
        status: A job status as the server sent it.

    Returns:
        A rich style name (yellow for statuses still in progress).
    """
    return _STATUS_STYLES.get(status, "yellow")


def short_status(status: str) -> str:
    """``TRAINING_JOB_RUNNING`` -> ``RUNNING``; other values unchanged (but cleaned).

    Args:
        status: A job status as the server sent it.

    Returns:
        The status for display.
    """
    status = one_line(status)
    return status.removeprefix(_STATUS_PREFIX) or status


def short_time(value: str | None) -> str:
    """An ISO time from the server as ``YYYY-MM-DD HH:MM:SS`` UTC (cleaned if unparsable).

    Args:
        value: The server's text, or None.

    Returns:
        The time for display ("" for None).
    """
    if not value:
        return ""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return one_line(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def human_bytes(size: float) -> str:
    """``1536`` -> ``1.5 KiB``.

    Args:
        size: A number of bytes.

    Returns:
        The size for display.
    """
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TiB"  # pragma: no cover - the loop always returns


def _ns_time(timestamp: str) -> str:
    try:
        moment = datetime.fromtimestamp(int(timestamp) / 1e9, tz=UTC)
    except (ValueError, OverflowError, OSError):
        return one_line(timestamp)
    return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


JOB_COLUMNS: Final = ("ID", "NAME", "STATUS", "INSTANCE", "PROJECT", "CREATED (UTC)")
PROJECT_COLUMNS: Final = ("ID", "NAME", "TEAM", "LATEST JOB", "CREATED (UTC)")


def job_rows(jobs: Sequence[TrainingJob]) -> list[list[str]]:
    """Table rows of jobs, in `JOB_COLUMNS` order.

    Args:
        jobs: Jobs as the API returned them.

    Returns:
        Cleaned cell texts.
    """
    return [
        [
            one_line(job.id),
            one_line(job.name or ""),
            short_status(job.current_status),
            one_line(job.instance_type.name),
            one_line(job.training_project.name),
            short_time(job.created_at),
        ]
        for job in jobs
    ]


def project_rows(projects: Sequence[TrainingProject]) -> list[list[str]]:
    """Table rows of projects, in `PROJECT_COLUMNS` order.

    Args:
        projects: Projects as the API returned them.

    Returns:
        Cleaned cell texts.
    """
    rows = []
    for project in projects:
        latest = project.latest_job
        latest_text = (
            f"{one_line(latest.id)} ({short_status(latest.current_status)})" if latest else ""
        )
        rows.append(
            [
                one_line(project.id),
                one_line(project.name),
                one_line(project.team_name or ""),
                latest_text,
                short_time(project.created_at),
            ]
        )
    return rows


def job_details(job: TrainingJob) -> list[tuple[str, str]]:
    """Field/value pairs describing one job.

    Args:
        job: The job.

    Returns:
        Cleaned ``(field, value)`` pairs.
    """
    instance = job.instance_type
    gpus = f"{instance.gpu_count} x {one_line(instance.gpu_type)}" if instance.gpu_type else "none"
    pairs = [
        ("id", one_line(job.id)),
        ("name", one_line(job.name or "")),
        ("status", short_status(job.current_status)),
        ("project", f"{one_line(job.training_project.name)} ({one_line(job.training_project_id)})"),
        ("instance", one_line(instance.name)),
        ("gpus per node", gpus),
        ("priority", str(job.priority)),
        ("availability", one_line(job.availability_model)),
        ("created (UTC)", short_time(job.created_at)),
        ("updated (UTC)", short_time(job.updated_at)),
    ]
    if job.error_message:
        pairs.append(("error", one_line(job.error_message)))
    return pairs


def project_details(project: TrainingProject) -> list[tuple[str, str]]:
    """Field/value pairs describing one project.

    Args:
        project: The project.

    Returns:
        Cleaned ``(field, value)`` pairs.
    """
    (row,) = project_rows([project])
    return list(zip(("id", "name", "team", "latest job", "created (UTC)"), row, strict=True))


def format_log_line(line: LogLine) -> str:
    """One log line for people: time, level, replica and the cleaned message.

    Args:
        line: The line as the API returned it.

    Returns:
        The text to print (the message keeps its own newlines and tabs).
    """
    level = one_line(line.level or "-")
    replica = f"[{one_line(line.replica)}] " if line.replica else ""
    return f"{_ns_time(line.timestamp)}  {level:<7}  {replica}{clean(line.message).rstrip()}"


def _rich_console(stream: TextIO) -> Console | None:
    """A rich console on ``stream`` when rich is installed and it is a terminal."""
    isatty = getattr(stream, "isatty", None)
    if isatty is None or not isatty():
        return None
    try:
        from rich.console import Console
    except ImportError:
        return None
    return Console(file=stream, highlight=False, soft_wrap=False)


class Output:
    """Where a command's results go: tables for people, or one JSON document.

    Args:
        json_mode: Print results as JSON on stdout; human notes stay on stderr.
        stdout: Results stream.
        stderr: Notes, progress and errors.
    """

    def __init__(
        self, *, json_mode: bool, stdout: TextIO | None = None, stderr: TextIO | None = None
    ) -> None:
        self.json_mode = json_mode
        self.stdout = stdout if stdout is not None else sys.stdout
        self.stderr = stderr if stderr is not None else sys.stderr
        self._console: Console | None = None
        self._console_checked = False

    @property
    def console(self) -> Console | None:
        """The rich console for stdout, or None for plain text."""
        if not self._console_checked:
            self._console = _rich_console(self.stdout)
            self._console_checked = True
        return self._console

    def json(self, value: Any) -> None:
        """Print ``value`` (models, lists and dicts of them) as one JSON document.

        Args:
            value: Anything ``msgspec.to_builtins`` accepts.
        """
        encoded = msgspec.json.encode(msgspec.to_builtins(value))
        self.stdout.write(msgspec.json.format(encoded, indent=2).decode() + "\n")
        self.stdout.flush()

    def json_line(self, value: Any) -> None:
        """Print ``value`` as one line of JSON and flush it, for streams (JSON lines).

        Args:
            value: Anything ``msgspec.to_builtins`` accepts.
        """
        self.stdout.write(msgspec.json.encode(msgspec.to_builtins(value)).decode() + "\n")
        self.stdout.flush()

    def line(self, text: str = "") -> None:
        """Print a line of (already cleaned) text on stdout.

        Args:
            text: The line.
        """
        self.stdout.write(text + "\n")
        self.stdout.flush()

    def note(self, text: str) -> None:
        """Print an informational line on stderr (never part of the results).

        Args:
            text: The line, already cleaned.
        """
        self.stderr.write(text + "\n")
        self.stderr.flush()

    def table(
        self,
        columns: Sequence[str],
        rows: Sequence[Sequence[str]],
        *,
        title: str | None = None,
        status_column: int | None = None,
    ) -> None:
        """Print rows under column headings.

        Args:
            columns: Headings.
            rows: Cell texts, already cleaned.
            title: Printed above the table.
            status_column: Index of a column of job statuses, coloured on terminals.
        """
        console = self.console
        if console is None:
            if title:
                self.line(title)
            self.line(_plain_table(columns, rows))
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, header_style="bold", title_justify="left")
        for name in columns:
            table.add_column(name, overflow="fold")
        for row in rows:
            cells = []
            for index, cell in enumerate(row):
                style = ""
                if index == status_column:
                    style = _STATUS_STYLES.get(_STATUS_PREFIX + cell, "yellow")
                cells.append(Text(cell, style=style))  # Text: no markup interpretation
            table.add_row(*cells)
        console.print(table)

    def details(self, pairs: Sequence[tuple[str, str]], *, title: str | None = None) -> None:
        """Print field/value pairs of one object.

        Args:
            pairs: Cleaned ``(field, value)`` pairs.
            title: Printed above them.
        """
        console = self.console
        if console is None:
            if title:
                self.line(title)
            width = max((len(key) for key, _ in pairs), default=0)
            for key, value in pairs:
                self.line(f"{key + ':':<{width + 1}}  {value}")
            return
        from rich.table import Table
        from rich.text import Text

        table = Table(title=title, show_header=False, title_justify="left", box=None)
        table.add_column(style="bold")
        table.add_column(overflow="fold")
        for key, value in pairs:
            table.add_row(Text(key), Text(value))
        console.print(table)

    @contextmanager
    def progress(self, description: str, total: int | None) -> Iterator[ProgressFn]:
        """A progress display on stderr, fed by the ``on_progress`` callback it yields.

        A rich bar on terminals; otherwise a line at every tenth of the way.

        Args:
            description: What is being done.
            total: Expected number of items, if known.

        Yields:
            ``on_progress(done, failed, total)``.
        """
        console = _rich_console(self.stderr)
        if console is None:
            yield _plain_progress(self, description, total)
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        with Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[red]{task.fields[failed]} failed"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        ) as bar:
            task = bar.add_task(description, total=total, failed=0)

            def update(done: int, failed: int, known_total: int | None) -> None:
                bar.update(
                    task,
                    completed=done + failed,
                    failed=failed,
                    total=known_total if known_total is not None else total,
                )

            yield update


def _plain_progress(out: Output, description: str, total: int | None) -> ProgressFn:
    started = time.monotonic()
    last_step = -1

    def update(done: int, failed: int, known_total: int | None) -> None:
        nonlocal last_step
        expected = known_total if known_total is not None else total
        finished = done + failed
        step = finished * 10 // expected if expected else finished // 100
        if step != last_step:
            last_step = step
            of = f"/{expected}" if expected is not None else ""
            out.note(
                f"{description}: {finished}{of} ({failed} failed, "
                f"{time.monotonic() - started:.1f}s)"
            )

    return update


def _plain_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    if not rows:
        return "(none)"
    widths = [len(name) for name in columns]
    for row in rows:
        for index, cell in enumerate(row):
            widths[index] = max(widths[index], len(cell))
    lines = ["  ".join(name.ljust(widths[i]) for i, name in enumerate(columns)).rstrip()]
    for row in rows:
        lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
    return "\n".join(lines)
