"""Tasks: ``nox -s lint typecheck tests conformance coordination integrations`` is what CI runs.

Virtualenvs are reused between runs, and a session reinstalls the project only
when ``pyproject.toml`` (or what it installs) changed: the project is installed
in editable mode, so source edits need no reinstall. ``nox -s tests`` runs the
whole suite, slow fault-injection runs included, on parallel pytest-xdist
workers; ``nox -s quick`` is the inner loop (no slow tests, no coverage).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "conformance", "coordination", "integrations"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"
# Workers for pytest-xdist: one per core ("auto"). More workers than cores finish
# sooner on an idle machine, but on a busy one they starve the tests that time
# real sockets. Override with PYTEST_WORKERS (e.g. 4, or 0 to debug in one process).
WORKERS = os.environ.get("PYTEST_WORKERS", "auto")
INTEGRATION_CONSTRAINTS = ("-c", "tests_integrations/constraints.txt")


def install(session: nox.Session, *requirements: str) -> None:
    """``session.install`` unless this virtualenv already has exactly these requirements."""
    key = hashlib.sha256(
        Path("pyproject.toml").read_bytes() + "\0".join(requirements).encode()
    ).hexdigest()
    location = getattr(session.virtualenv, "location", None)
    stamp = Path(location, ".installed-requirements") if location else None
    if stamp is not None and stamp.is_file() and stamp.read_text() == key:
        return
    session.install(*requirements)
    if stamp is not None:
        stamp.write_text(key)


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    install(session, "ruff>=0.6", "import-linter>=2.1", "-e", ".")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # The layers contract in pyproject.toml: a module imports only below itself.
    session.run("lint-imports")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    # The integrations are type-checked against the frameworks they import.
    install(
        session,
        *INTEGRATION_CONSTRAINTS,
        "-e",
        ".[test,cli,redis,airflow,temporal]",
        "mypy>=1.11",
        "types-jsonschema",
        "types-PyYAML>=6.0",
    )
    session.run("mypy", "--strict", "baseten_training_async", "tests")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    """Every test, with coverage: the fast ones in parallel, then the slow ones alone.

    The slow fault-injection runs time themselves against deadlines, so they get
    the machine to themselves; coverage of both passes (and of the CLI's
    subprocesses) is combined before the 90% floor is checked.
    """
    install(session, "-e", ".[test,cli]")
    # tests/coordination needs a real redis-server: `nox -s coordination` runs it.
    common = ["--ignore=tests/coordination", "--cov=baseten_training_async", "--cov-append"]
    session.run("coverage", "erase")
    session.run(
        "pytest",
        "-n",
        WORKERS,
        "--dist",
        "loadgroup",
        "-m",
        "not slow",
        *common,
        "--cov-report=",
        *session.posargs,
    )
    session.run(
        "pytest",
        "-m",
        "slow",
        *common,
        "--cov-report=term",
        "--cov-fail-under=90",
        *session.posargs,
        success_codes=[0, 5],  # 5: the posargs selected no slow test
    )


@nox.session(python=PYTHON)
def conformance(session: nox.Session) -> None:
    """The official clients (baseten, truss) drive the bundled fake; prints a table."""
    # The peers live only in this session's virtualenv, never in the SDK's deps. A
    # peer that cannot install fails the session: these tests never skip.
    install(session, "-e", ".[test]", "baseten==0.13.1", "truss==0.18.35")
    session.run("pytest", "--conformance", "tests/conformance", *session.posargs)


@nox.session(python=PYTHON)
def coordination(session: nox.Session) -> None:
    # A real redis-server on PATH (.ci/run installs it); the tests fail, never skip, without it.
    install(session, "-e", ".[test,redis]")
    session.run(
        "pytest",
        "tests/coordination",
        "--cov",
        "--cov-config=tests/coordination/coverage.toml",
        "--cov-report=term",
        "--cov-fail-under=90",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def integrations(session: nox.Session) -> None:
    # Airflow and Temporal live only in this session's virtualenv (and typecheck's):
    # the core tests session stays free of them. Prefect and Dagster run the recipes.
    # Airflow and Prefect share many dependencies: unconstrained, the resolver can pick
    # an older Airflow with newer dependencies it does not work with.
    install(
        session,
        *INTEGRATION_CONSTRAINTS,
        "-e",
        ".[test,airflow,temporal]",
        "prefect>=3.0",
        "dagster>=1.8",
    )
    session.run(
        "pytest",
        "tests_integrations",
        "--cov",
        "--cov-config=tests_integrations/coverage.toml",
        "--cov-report=term",
        "--cov-fail-under=90",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def quick(session: nox.Session) -> None:
    """The inner loop: every test but the slow fault-injection runs, no coverage."""
    install(session, "-e", ".[test,cli]")
    session.run(
        "pytest", "-n", WORKERS, "--dist", "loadgroup", "-m", "not slow", "-q", *session.posargs
    )


@nox.session(python=PYTHON)
def docs(session: nox.Session) -> None:
    install(session, "-e", ".[docs,redis]", "ruff>=0.6")  # ruff formats rendered signatures
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python=PYTHON)
def docs_screens(session: nox.Session) -> None:
    """Every docs page in headless Chromium at 1280 px: no code block wider than its box.

    Needs a Chromium binary (Debian: ``apt-get install chromium``; or ``$CHROMIUM``).
    Screenshots go to ``build/docs-screens/``.
    """
    install(session, "-e", ".[docs]", "ruff>=0.6")
    site = Path(session.create_tmp()) / "site"
    session.run(
        "mkdocs", "build", "--quiet", "--site-dir", str(site), env={"NO_MKDOCS_2_WARNING": "1"}
    )
    session.run("python", "tests/screens/check_docs.py", str(site), "build/docs-screens")


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    # The otel extra and the OpenTelemetry SDK: for the "hooks + spans" row only.
    session.install("-e", ".[redis,otel]", "opentelemetry-sdk")
    # The peers live only in this session's virtualenv, never in the SDK's deps.
    # truss: the newest release whose dependencies install here (see docs/performance.md).
    # A peer that cannot install is reported as "not measured" by run.py, not faked.
    for peer in ("baseten==0.13.1", "truss==0.18.35"):
        session.install(peer, success_codes=[0, 1])
    command = " ".join(["nox -s bench", *(["--", *session.posargs] if session.posargs else [])])
    session.run("python", "benchmarks/run.py", *session.posargs, env={"BENCH_COMMAND": command})
