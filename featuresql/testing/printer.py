"""What ``featuresql test`` prints: one line per test, the failures under it, a summary."""

from __future__ import annotations

import click

from featuresql.run.results import TestResult, TestRun, TestStatus

_LABELS = {
    "pass": ("PASS", "green"),
    "warn": ("WARN", "yellow"),
    "fail": ("FAIL", "red"),
    "error": ("ERROR", "red"),
    "skipped": ("SKIP", "yellow"),
}
_SUMMARY: tuple[tuple[TestStatus, str], ...] = (
    ("pass", "passed"),
    ("warn", "warned"),
    ("fail", "failed"),
    ("error", "errored"),
    ("skipped", "skipped"),
)
WIDTH = 64


class TestPrinter:
    __test__ = False  # not a pytest test class

    def __call__(self, result: TestResult, index: int, total: int) -> None:
        label, colour = _LABELS[result.status]
        count = f" {result.failures:,}" if result.status in ("warn", "fail") else ""
        dots = "." * max(2, WIDTH - len(result.name))
        click.echo(
            f"{index:>3} of {total} {click.style(label + count, fg=colour)} {result.name} {dots} "
            f"[{result.seconds:.2f}s]"
        )
        if result.status in ("pass", "skipped"):
            return
        if result.message:
            click.secho(f"      {result.message}", fg=colour)
        for line in result.details.splitlines():
            click.echo(f"      {line}")

    def summary(self, run: TestRun) -> None:
        counts = ", ".join(f"{run.count(status)} {word}" for status, word in _SUMMARY)
        noun = "test" if len(run.results) == 1 else "tests"
        click.secho(
            f"Finished {len(run.results)} {noun} in {run.seconds:.2f}s: {counts}.", fg="green" if run.ok else "red"
        )
