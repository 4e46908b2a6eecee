"""Run the selected tests one by one and judge them.

A check that finds failures fails with its severity (``warn`` or ``error``); a
check that cannot run at all (a missing table, invalid SQL) is an ``error``.
With ``fail_fast`` the first failure or error skips the remaining tests. The
run is not ok when any test failed with severity error or errored: the CLI
exits 1, as dbt does, and ``target/run_results.json`` holds every result.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from featuresql.errors import FeaturesqlError
from featuresql.run import artifacts
from featuresql.run.results import TestResult, TestRun, TestStatus
from featuresql.testing.cases import Outcome, TestCase, TestEnv
from featuresql.times import utc

if TYPE_CHECKING:
    from featuresql.context import Context

Reporter = Callable[[TestResult, int, int], None]


def run_tests(
    cases: Sequence[TestCase], env: TestEnv, *, fail_fast: bool = False, report: Reporter | None = None
) -> TestRun:
    """Run ``cases`` in order; each becomes one TestResult."""
    started = time.perf_counter()
    run = TestRun()
    stop = False
    for case in cases:
        result = _skipped(case) if stop else run_one(case, env)
        run.results.append(result)
        if report:
            report(result, len(run.results), len(cases))
        stop = stop or (fail_fast and result.status in ("fail", "error"))
    run.seconds = time.perf_counter() - started
    return run


def run_one(case: TestCase, env: TestEnv) -> TestResult:
    started = time.perf_counter()
    try:
        outcome = case.check(env)
    except FeaturesqlError as exc:
        where = (
            exc
            if exc.path is not None or case.path is None
            else FeaturesqlError(exc.message, path=case.path, line=case.line)
        )
        return _result(case, "error", time.perf_counter() - started, Outcome(0, where.one_line(), sql=exc.sql))
    except Exception as exc:  # a bug in one check must not hide every other test's result
        details = traceback.format_exc() if env.debug else ""
        message = f"internal error: {type(exc).__name__}: {exc} (--debug shows the traceback; please report it)"
        return _result(case, "error", time.perf_counter() - started, Outcome(0, message, details))
    severity = outcome.severity or case.severity
    status: TestStatus = "pass" if not outcome.failures else ("warn" if severity == "warn" else "fail")
    return _result(case, status, time.perf_counter() - started, outcome)


def _result(case: TestCase, status: TestStatus, seconds: float, outcome: Outcome) -> TestResult:
    return TestResult(
        name=case.name,
        kind=case.kind,
        test_type=case.test_type,
        status=status,
        seconds=seconds,
        failures=outcome.failures,
        message=outcome.message,
        details=outcome.details,
        sql=outcome.sql,
        models=case.models,
        sources=case.sources,
    )


def _skipped(case: TestCase) -> TestResult:
    return _result(case, "skipped", 0.0, Outcome(0, "skipped by --fail-fast"))


def test_project(
    context: Context,
    select: tuple[str, ...] = (),
    exclude: tuple[str, ...] = (),
    *,
    online: bool = False,
    online_sample: int = 100,
    now: datetime | None = None,
    fail_fast: bool = False,
    only_kind: str | None = None,
    debug: bool = False,
    report: Reporter | None = None,
    announce: Callable[[int], None] | None = None,
    command: str = "test",
) -> TestRun:
    """Collect, select and run the project's tests; write ``target/run_results.json``.

    ``only_kind`` keeps one kind of test (``featuresql freshness`` runs ``freshness``);
    selecting ``test_type:online`` implies ``online``.
    """
    from featuresql.testing.collect import collect_tests
    from featuresql.testing.selection import select_tests

    now = None if now is None else utc(now)
    online = online or any("test_type:online" in selector for selector in select)
    cases = collect_tests(context, online=online, only=only_kind)
    selected = select_tests(cases, context.graph(), select, exclude)
    if announce:
        announce(len(selected))
    models = context.compiled.models
    read = {s for case in selected if case.test_type != "unit" for s in case.sources}
    read |= {
        s
        for case in selected
        if case.test_type != "unit"
        for m in case.models
        if m in models
        for s in models[m].sources
    }
    context.register_file_sources(sorted(read))  # data tests and freshness read them
    env = TestEnv(context, now or datetime.now(UTC), online_sample, debug)
    run = run_tests(selected, env, fail_fast=fail_fast, report=report)
    arguments = {
        "select": list(select),
        "exclude": list(exclude),
        "now": env.now.isoformat(),
        "online": online,
        "fail_fast": fail_fast,
    }
    artifacts.write_test_results(context.project.target_dir, run, context.target_name, arguments, command)
    return run
