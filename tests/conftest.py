"""Shared pytest fixtures.

Example-project and CLI fixtures (used by test_cli, test_errors, test_config,
test_golden_sql). The example project at the repository root is the end-to-end
fixture; tests always work on a copy under tmp_path (``projects.copy_example``)
so nothing is ever written into the repository.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from engines import bigquery_server, engine, fakesnow_server  # noqa: F401  (fixtures)
from online_stores import online_store  # noqa: F401  (fixture)
from projects import SMALL_VARS_ARG, Edit, copy_example


@pytest.fixture(scope="session")
def small_vars() -> str:
    """The --vars value that keeps the example project's demo data small."""
    return SMALL_VARS_ARG


@pytest.fixture(scope="session")
def copy_example_to() -> Callable[..., Path]:
    """``copy_example`` as a fixture, for module- or session-scoped projects."""
    return copy_example


@pytest.fixture
def example_project(tmp_path: Path) -> Path:
    """A fresh copy of the example project."""
    return copy_example(tmp_path / "cash_advance")


@pytest.fixture
def make_project(tmp_path: Path) -> Callable[..., Path]:
    """Build a copy of the example project with some edits: ``make_project(edits, name=...)``."""

    def make(edits: Iterable[Edit] = (), name: str = "project") -> Path:
        return copy_example(tmp_path / name, edits)

    return make


@dataclass
class CliResult:
    exit_code: int
    stdout: str
    stderr: str
    exception: BaseException | None = None

    @property
    def stderr_lines(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """Invoke the CLI in process with click's CliRunner: ``cli(project_dir, *args)``.

    The working directory is the project folder, as for a user typing the command.
    """
    from featuresql.cli.main import cli as command

    def invoke(project_dir: Path, *args: str) -> CliResult:
        monkeypatch.chdir(project_dir)
        result = CliRunner().invoke(command, list(args), prog_name="featuresql")
        return CliResult(result.exit_code, result.stdout, result.stderr, result.exception)

    return invoke


@pytest.fixture
def cli_process() -> Callable[..., CliResult]:
    """Run the CLI as a separate process: ``cli_process(project_dir, *args)``, with no ``--vars`` of its own."""
    import cli_process as processes  # it imports CliResult from here

    def run(project_dir: Path, *args: str, env: dict[str, str] | None = None) -> CliResult:
        return processes.run(project_dir, *args, timeout=120, variables=None, **(env or {}))

    return run


# --------------------------------------------------------------------------- end
