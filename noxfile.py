"""Tasks: ``nox -s lint typecheck tests conformance coordination integrations`` is what CI runs."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "typecheck", "tests", "conformance", "coordination", "integrations"]
nox.options.reuse_existing_virtualenvs = True

PYTHON = "3.11"


@nox.session(python=PYTHON)
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.6", "import-linter>=2.1", "-e", ".")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    # The layers contract in pyproject.toml: a module imports only below itself.
    session.run("lint-imports")


@nox.session(python=PYTHON)
def typecheck(session: nox.Session) -> None:
    # The integrations are type-checked against the frameworks they import.
    session.install("-e", ".[test,cli,redis,airflow,temporal]", "mypy>=1.11", "types-jsonschema")
    session.run("mypy", "--strict", "baseten_training_async", "tests")


@nox.session(python=PYTHON)
def tests(session: nox.Session) -> None:
    session.install("-e", ".[test,cli]")
    session.run(
        "pytest",
        "--cov=baseten_training_async",
        "--cov-report=term",
        "--cov-fail-under=90",
        "--ignore=tests/coordination",
        *session.posargs,
    )


@nox.session(python=PYTHON)
def conformance(session: nox.Session) -> None:
    """The official clients (baseten, truss) drive the bundled fake; prints a table."""
    session.install("-e", ".[test]")
    # The peers live only in this session's virtualenv, never in the SDK's deps. A
    # peer that cannot install fails the session: these tests never skip.
    session.install("baseten==0.13.1", "truss==0.18.35")
    session.run("pytest", "--conformance", "tests/conformance", *session.posargs)


@nox.session(python=PYTHON)
def coordination(session: nox.Session) -> None:
    # A real redis-server on PATH (.ci/run installs it); the tests fail, never skip, without it.
    session.install("-e", ".[test,redis]")
    session.run("pytest", "tests/coordination", *session.posargs)


@nox.session(python=PYTHON)
def integrations(session: nox.Session) -> None:
    # Airflow and Temporal live only in this session's virtualenv (and typecheck's):
    # the core tests session stays free of them. Prefect and Dagster run the recipes.
    session.install("-e", ".[test,airflow,temporal]", "prefect>=3.0", "dagster>=1.8")
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
def docs(session: nox.Session) -> None:
    session.install("-e", ".[docs]", "ruff>=0.6")  # ruff formats rendered signatures
    session.run("mkdocs", "build", "--strict", env={"NO_MKDOCS_2_WARNING": "1"})


@nox.session(python=PYTHON)
def bench(session: nox.Session) -> None:
    session.install("-e", ".[redis]")
    # The peers live only in this session's virtualenv, never in the SDK's deps.
    # truss: the newest release whose dependencies install here (see docs/performance.md).
    # A peer that cannot install is reported as "not measured" by run.py, not faked.
    for peer in ("baseten==0.13.1", "truss==0.18.35"):
        session.install(peer, success_codes=[0, 1])
    command = " ".join(["nox -s bench", *(["--", *session.posargs] if session.posargs else [])])
    session.run("python", "benchmarks/run.py", *session.posargs, env={"BENCH_COMMAND": command})
