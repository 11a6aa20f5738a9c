"""Exit codes, and how each error becomes one line on stderr and an exit code."""

from __future__ import annotations

import asyncio
from typing import Final

from .. import (
    APIConnectionError,
    APIStatusError,
    AuthenticationError,
    BasetenError,
    InvalidInputError,
    NotFoundError,
    PermissionDeniedError,
    WaitTimeoutError,
)
from ._output import one_line

__all__ = [
    "EXIT_API",
    "EXIT_AUTH",
    "EXIT_INTERRUPTED",
    "EXIT_JOB",
    "EXIT_NOT_FOUND",
    "EXIT_OK",
    "EXIT_USAGE",
    "EXIT_CODES_HELP",
    "AlreadyFinishedError",
    "CommandInterrupted",
    "JobOutcomeError",
    "NotFoundUsageError",
    "OutcomeUnknownError",
    "UsageError",
    "describe",
    "exit_code_for",
]

EXIT_OK: Final = 0
EXIT_JOB: Final = 1
EXIT_USAGE: Final = 2
EXIT_AUTH: Final = 3
EXIT_NOT_FOUND: Final = 4
EXIT_API: Final = 5
EXIT_INTERRUPTED: Final = 130

EXIT_CODES_HELP: Final = """\
exit codes:
  0    success
  1    the job did not complete (jobs wait: it failed, was stopped, or --timeout passed;
       jobs stop: it had already finished, unless --ok-if-done)
  2    usage error: bad arguments, an unreadable or invalid spec
  3    authentication: missing, invalid or unauthorised API key
  4    not found: no such project or job
  5    API, server or connection error (a create may have taken effect: see the message)
  130  interrupted"""


class UsageError(Exception):
    """The command line or a file it names is wrong; nothing was sent."""


class NotFoundUsageError(UsageError):
    """A project named on the command line does not exist (exit 4, like a 404)."""


class JobOutcomeError(Exception):
    """The command worked, but the job it watched did not complete."""


class AlreadyFinishedError(JobOutcomeError):
    """``jobs stop`` found the job already in a terminal status."""


class OutcomeUnknownError(Exception):
    """A create may or may not have started a job; the message says how to check."""


class CommandInterrupted(Exception):
    """Ctrl-C ended a command after it printed what was done and how to resume."""


def exit_code_for(exc: BaseException) -> int:
    """The exit code an exception ends the program with.

    Args:
        exc: The error that ended the command.

    Returns:
        One of the ``EXIT_*`` codes.
    """
    if isinstance(exc, KeyboardInterrupt | asyncio.CancelledError | CommandInterrupted):
        return EXIT_INTERRUPTED
    if isinstance(exc, NotFoundUsageError):
        return EXIT_NOT_FOUND
    if isinstance(exc, UsageError):
        return EXIT_USAGE
    if isinstance(exc, JobOutcomeError | WaitTimeoutError):
        return EXIT_JOB
    if isinstance(exc, AuthenticationError | PermissionDeniedError):
        return EXIT_AUTH
    if isinstance(exc, InvalidInputError):
        return EXIT_AUTH if exc.field == "api_key" else EXIT_USAGE
    if isinstance(exc, NotFoundError):
        return EXIT_NOT_FOUND
    return EXIT_API


def describe(exc: BaseException) -> str:
    """One readable, sanitised line describing an error, with a hint where useful.

    Args:
        exc: The error.

    Returns:
        The line, without the ``error:`` prefix.
    """
    text = one_line(str(exc)) or type(exc).__name__
    if isinstance(exc, AuthenticationError):
        return f"authentication failed: {text} (check --api-key or $BASETEN_API_KEY)"
    if isinstance(exc, PermissionDeniedError):
        return f"permission denied: {text}"
    if isinstance(exc, InvalidInputError) and exc.field == "api_key":
        if "no API key" in text:
            return "no API key: pass --api-key or set $BASETEN_API_KEY"
        return f"invalid API key: {text}"
    if isinstance(exc, NotFoundError):
        return f"not found: {text}"
    if isinstance(exc, APIStatusError):
        return f"API error {text}"
    if isinstance(exc, OutcomeUnknownError | CommandInterrupted):
        return text
    if isinstance(exc, APIConnectionError):
        hint = " (the request may have taken effect)" if exc.maybe_committed else ""
        return f"connection error: {text}{hint}"
    if isinstance(exc, NotFoundUsageError):
        return f"not found: {text}"
    if isinstance(exc, BasetenError | UsageError | JobOutcomeError):
        return text
    return f"{type(exc).__name__}: {text}"
