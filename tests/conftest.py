"""Shared pytest fixtures."""

from __future__ import annotations

# ---------------------------------------------------------------------------
# Example-project and CLI fixtures (used by test_cli, test_errors, test_config,
# test_golden_sql). The example project at the repository root is the
# end-to-end fixture; tests always work on a copy under tmp_path so nothing is
# ever written into the repository.
# ---------------------------------------------------------------------------
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from engines import bigquery_server, engine, fakesnow_server  # noqa: F401  (fixtures)

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_FILES = ("project.yml", "profiles.yml", "features", "macros")
# Small demo data so every CLI run takes well under a second.
SMALL_VARS = {"demo_transactions": 20000, "demo_users": 500, "demo_balance_events": 2000}
SMALL_VARS_ARG = json.dumps(SMALL_VARS)
# Edits applied to a copy of the example project: (file, old text, new text).
# ``old`` None writes ``new`` as the whole file (creating it if needed).
Edit = tuple[str, str | None, str]


def copy_example(destination: Path, edits: Iterable[Edit] = ()) -> Path:
    """Copy the example project to ``destination`` and apply ``edits``."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in EXAMPLE_FILES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name)
        else:
            shutil.copy2(source, destination / name)
    apply_edits(destination, edits)
    return destination


def apply_edits(destination: Path, edits: Iterable[Edit], label: str = "") -> None:
    """Apply ``(file, old, new)`` edits under ``destination``; each ``old`` must occur exactly once."""
    for relative, old, new in edits:
        path = destination / relative
        if old is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new, encoding="utf-8")
            continue
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{label}edit target {old!r} must occur once in {relative}"
        path.write_text(text.replace(old, new), encoding="utf-8")


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
    """Run the CLI as a separate process: ``cli_process(project_dir, *args)``."""

    def run(project_dir: Path, *args: str, env: dict[str, str] | None = None) -> CliResult:
        command = [sys.executable, "-c", "from featuresql.cli.main import main; main()", *args]
        completed = subprocess.run(
            command,
            cwd=project_dir,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "NO_COLOR": "1", **(env or {})},
        )
        return CliResult(completed.returncode, completed.stdout, completed.stderr)

    return run


# --------------------------------------------------------------------------- end
