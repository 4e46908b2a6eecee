"""What every kind of test is to the runner: a named check returning an outcome.

Each kind (generic and singular data tests, unit tests, freshness, the
point-in-time checks, the online check) builds ``TestCase`` objects; the runner
(``featuresql.testing.runner``) selects them, times them, turns outcomes into
statuses with the test's severity, and writes the results.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from featuresql.run.results import TestType

if TYPE_CHECKING:
    from featuresql.context import Context

Severity = Literal["warn", "error"]


@dataclass
class TestEnv:
    """What a check may use: the project on its target (connected on first use), the time, display limits."""

    __test__ = False  # not a pytest test class

    context: Context
    now: datetime  # UTC
    online_sample: int = 100  # entities per model sampled by the online check
    debug: bool = False  # keep the traceback of a check that crashed


@dataclass(frozen=True)
class Outcome:
    """What a check found. ``failures`` 0 is a pass.

    ``severity`` overrides the test's own (freshness decides warn or error by age).
    """

    failures: int
    message: str = ""  # one line: what failed, or what passed
    details: str = ""  # the failing rows or the diff, printed under the result
    sql: str | None = None  # the query that found the failures, to rerun by hand
    severity: Severity | None = None


Check = Callable[[TestEnv], Outcome]


@dataclass(frozen=True)
class TestCase:
    """One test: its name, what it is attached to (for selection), and its check."""

    __test__ = False  # not a pytest test class

    name: str  # unique in the project, e.g. not_null_user_transactions_user_id
    kind: str  # not_null, unique, ..., singular, unit, freshness, availability, leakage, online
    test_type: TestType  # data: checks tables in the warehouse; unit: fixtures on DuckDB in memory
    check: Check
    models: tuple[str, ...] = ()  # models it tests or reads
    sources: tuple[str, ...] = ()  # sources as "bank.transactions"
    severity: Severity = "error"
    path: Path | None = None
    line: int | None = None
    description: str = ""
    tags: tuple[str, ...] = field(default=())
