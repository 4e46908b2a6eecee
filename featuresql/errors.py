"""The few exception classes featuresql raises, and the exit codes they map to.

Every error a user can cause is a ``FeaturesqlError`` whose message is one line
saying what is wrong, where (file:line, model, column) and how to fix it. The
CLI prints that line in red and exits with the error's ``exit_code``; a
traceback is shown only with ``--debug``.
"""

from __future__ import annotations

from pathlib import Path

EXIT_MODEL_FAILURE = 1
EXIT_USAGE = 2
EXIT_BUSY = 3  # another run holds the target: nothing was done, retry later


class FeaturesqlError(Exception):
    """Base class: a problem the user can act on."""

    exit_code = EXIT_USAGE
    sql: str | None = None  # the query that failed, when a test ran one (shown in run_results.json)

    def __init__(self, message: str, *, path: Path | str | None = None, line: int | None = None):
        self.message = message
        self.path = Path(path) if path is not None else None
        self.line = line
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = ""
        if self.path is not None:
            where = f"{_display(self.path)}:{self.line}: " if self.line else f"{_display(self.path)}: "
        return where + " ".join(self.message.split("\n"))


class ConfigError(FeaturesqlError):
    """project.yml, profiles.yml, sources or model YAML is invalid."""


class CompileError(FeaturesqlError):
    """A model cannot be rendered, parsed or planned."""


class ExecutionError(FeaturesqlError):
    """The warehouse rejected a statement or a model failed while running."""

    exit_code = EXIT_MODEL_FAILURE


class TargetBusyError(FeaturesqlError):
    """Another run holds the target's lock (or DuckDB file): ``holder`` says which.

    The advice depends on whether this process already waited (``--lock-timeout``).
    """

    exit_code = EXIT_BUSY

    def __init__(self, holder: str, *, waited: float = 0.0):
        self.holder = holder
        if waited:
            advice = f"still busy after waiting {waited:g} s (--lock-timeout): try again later"
        else:
            advice = "wait for it to finish, or pass --lock-timeout SECONDS to wait for it"
        super().__init__(f"{holder}: {advice}")


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def closest(name: str, candidates: list[str] | set[str] | tuple[str, ...]) -> str:
    """Return ' (did you mean X?)' for the closest candidate, or ''."""
    import difflib

    match = difflib.get_close_matches(name, sorted(candidates), n=1, cutoff=0.6)
    return f" (did you mean {match[0]}?)" if match else ""
