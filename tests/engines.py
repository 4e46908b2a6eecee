"""The three engines as test targets: one isolated namespace per test, on real servers.

- ``duckdb``: a database file in the test's folder;
- ``snowflake``: the real snowflake-connector-python over HTTP to a fakesnow
  server (``tests/snowflake_server.py``), one database per test;
- ``bigquery``: the real google-cloud-bigquery client against the local-bigquery
  emulator (``tests/bigquery_server.py``), one project per test.

The servers start once per session, only when a test asks for that engine. A
missing server installation fails the tests that need it with the command that
installs it; nothing is skipped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

ENGINES = ("duckdb", "snowflake", "bigquery")
REL_TOL = 1e-9
_counter = itertools.count(1)


@dataclass(frozen=True)
class Engine:
    """How to reach one engine: the profiles.yml settings of a fresh, empty namespace."""

    name: str
    settings_factory: Any  # (folder) -> target settings

    def target(self, folder: Path) -> dict[str, Any]:
        return dict(self.settings_factory(folder))


def write_profile(project: Path, settings: Mapping[str, Any], name: str = "conformance") -> None:
    """Make ``name`` (with ``settings``) the project's only and default target."""
    text = yaml.safe_dump({"target": name, "targets": {name: dict(settings)}}, sort_keys=False)
    (project / "profiles.yml").write_text(text, encoding="utf-8")


def unique(prefix: str) -> str:
    return f"{prefix}_{next(_counter)}"


@pytest.fixture(scope="session")
def fakesnow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from snowflake_server import running_fakesnow

    with running_fakesnow(tmp_path_factory.mktemp("fakesnow")) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def bigquery_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from bigquery_server import running_bigquery_emulator

    with running_bigquery_emulator(tmp_path_factory.mktemp("bigquery")) as endpoint:
        yield endpoint


def snowflake_settings(endpoint: Any) -> dict[str, Any]:
    return {
        "type": "snowflake",
        "account": "featuresql",
        "user": "tester",
        "password": "not-a-secret",
        "host": endpoint.host,
        "port": endpoint.port,
        "protocol": "http",
        "database": unique("conformance").upper(),
        "schema": "features",
        # fakesnow has nowhere to send telemetry; a short network timeout bounds the
        # connector's retries of a statement fakesnow fails on (see snowflake_server.py)
        "connect_args": {
            "session_parameters": {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False},
            "network_timeout": 1,
        },
    }


def bigquery_settings(endpoint: Any) -> dict[str, Any]:
    return {
        "type": "bigquery",
        "project": unique("conformance").replace("_", "-"),
        "dataset": "features",
        "method": "anonymous",
        "api_endpoint": endpoint.api_endpoint,
    }


@pytest.fixture(params=ENGINES)
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each engine in turn; the settings name a namespace no other test uses."""
    name = request.param
    request.applymarker(getattr(pytest.mark, name))
    if name == "duckdb":
        return Engine(
            name, lambda folder: {"type": "duckdb", "path": str(folder / "conformance.duckdb"), "schema": "features"}
        )
    if name == "snowflake":
        endpoint = request.getfixturevalue("fakesnow_server")
        return Engine(name, lambda folder: snowflake_settings(endpoint))
    endpoint = request.getfixturevalue("bigquery_server")
    return Engine(name, lambda folder: bigquery_settings(endpoint))


# -- comparing results across engines -------------------------------------------------------


def canonical(value: Any) -> Any:
    """One spelling per value whatever the engine returned.

    Instants become naive UTC datetimes (BigQuery returns its TIMESTAMP zoned), and
    integral decimals become ints (Snowflake's NUMBER(38, 0) is a decimal type).
    """
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, Decimal) and value == value.to_integral_value() and value.as_tuple().exponent == 0:
        return int(value)
    return value


def canonical_rows(table: pa.Table) -> list[dict[str, Any]]:
    return [{k.lower(): canonical(v) for k, v in row.items()} for row in table.to_pylist()]


def same(actual: Any, expected: Any) -> bool:
    """Equal values; doubles to 1e-9 relative; decimals by value, whatever their scale."""
    if actual is None or expected is None:
        return actual is None and expected is None
    if isinstance(expected, float) or isinstance(actual, float):
        try:
            return math.isclose(float(actual), float(expected), rel_tol=REL_TOL, abs_tol=0.0)
        except (TypeError, ValueError):
            return False
    if isinstance(expected, Decimal) or isinstance(actual, Decimal):
        return isinstance(actual, Decimal | int) and isinstance(expected, Decimal | int) and actual == expected
    return type(actual) is type(expected) and actual == expected


def differences(actual: Sequence[dict[str, Any]], expected: Sequence[dict[str, Any]], limit: int = 10) -> list[str]:
    """Row-by-row differences of two results in the same order (empty when they agree)."""
    problems = []
    if len(actual) != len(expected):
        problems.append(f"{len(actual)} rows, expected {len(expected)}")
    for number, (got, want) in enumerate(zip(actual, expected, strict=False)):
        if sorted(got) != sorted(want):
            problems.append(f"columns {sorted(got)}, expected {sorted(want)}")
            break
        for column, value in want.items():
            if not same(got[column], value):
                problems.append(f"row {number} {column}: got {got[column]!r}, expected {value!r}")
        if len(problems) >= limit:
            break
    return problems[:limit]
