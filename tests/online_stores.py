"""The online stores as test targets, as ``engines.py`` has the warehouses: one suite runs on each.

- ``local``: the SQLite file under the project's ``target/online/`` (the example
  project's default store, untouched);
- ``dynamodb``: real boto3 against AWS's DynamoDB Local (``tests/dynamodb_server.py``,
  in the private network namespace of ``ci/in_private_network.sh``), a table per test.

The ``online_store`` fixture gives each store in turn, with the ``dynamodb`` marker
on DynamoDB's; a module's tests share one DynamoDB Local server. Nothing is
skipped: a missing DynamoDB Local fails its tests with the command that installs it.

One clock for every store: DynamoDB Local deletes expired items by the wall
clock, so ``NOW`` is 2 to 3 hours ahead of it (no item live at ``NOW`` expires
while a run of the tests under 2 hours lasts) and the demo data ends the day before ``NOW``. An item
expired at ``NOW`` may be missing on DynamoDB (it deletes such items late, when it
likes); the local store keeps it.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from dynamodb_server import REGION, DynamoEndpoint, dynamodb_client, dynamodb_local_with_credentials
from projects import SMALL_VARS

from featuresql.context import Context
from featuresql.online.stores import open_store
from featuresql.online.sync import SyncResult, run_sync
from featuresql.serving.items import EXPIRES, FEATURE_TS, MARKER_KEY, RUN, VERSION

STORES = ("local", "dynamodb")
# DynamoDB Local deletes expired items by the wall clock, while the tests read at simulated times:
# every simulated time (as early as NOW - 20 days) must be later than the real clock, or an item the
# reader still counts as live at that time can vanish between a sync and a read (a flaky None).
NOW = (datetime.now(UTC) + timedelta(days=30, hours=3)).replace(minute=0, second=0, microsecond=0)
VARS = {**SMALL_VARS, "demo_end": (NOW - timedelta(days=1)).strftime("%Y-%m-%d")}
Items = dict[str, dict[str, Any]]
_tables = itertools.count(1)


@dataclass(frozen=True)
class OnlineStoreTarget:
    """One online store under test: how a project syncs to it, and what it holds."""

    name: str
    endpoint: DynamoEndpoint | None = None  # DynamoDB Local, for the dynamodb store

    @property
    def deletes_expired(self) -> bool:
        """Whether the store deletes expired items itself (DynamoDB does, late; the local store never does)."""
        return self.name == "dynamodb"

    def use(self, project: Path, label: str) -> None:
        """Point the project's dev target at a fresh table of this store (named after ``label``)."""
        if self.endpoint is None:
            return  # the project's own target/online/dev.sqlite
        use_dynamodb(project, self.endpoint.endpoint_url, table_name(label))

    def table(self, project: Path) -> str:
        """The project's table in this store (a path for the local store); the warehouse is not opened."""
        with Context(project, variables=VARS, offline=True) as context:
            return open_store(context).table

    def items(self, project: Path) -> Items:
        """Every entity item the project's store holds (not the sync marker), by partition key, in
        DynamoDB's low-level form."""
        stored = self.all_items(project)
        stored.pop(MARKER_KEY, None)
        return stored

    def all_items(self, project: Path) -> Items:
        """Every item of the project's store, the sync marker included."""
        table = self.table(project)
        if self.endpoint is None:
            if not Path(table).exists():  # wiped
                return {}
            with closing(sqlite3.connect(f"file:{table}?mode=ro", uri=True)) as connection:
                return {pk: json.loads(item) for pk, item in connection.execute("select pk, item from items")}
        return scan(self.endpoint, table)

    def wipe(self, project: Path) -> None:
        """Empty the project's store (the local file deleted; every DynamoDB item deleted, the table kept)."""
        table = self.table(project)
        if self.endpoint is None:
            Path(table).unlink(missing_ok=True)
            return
        if not self.has_table(project):
            return
        client = dynamodb_client(self.endpoint)
        for pk in scan(self.endpoint, table):
            client.delete_item(TableName=table, Key={"pk": {"S": pk}})

    def restore(self, project: Path, backup: Items) -> None:
        """Make the store hold exactly ``backup`` (every item of an earlier ``all_items``), as a restore does."""
        table = self.table(project)
        if self.endpoint is None:
            with closing(sqlite3.connect(table)) as connection, connection:
                connection.execute("delete from items")
                connection.executemany(
                    "insert into items (pk, ts, version, expires, item) values (?, ?, ?, ?, ?)",
                    [
                        (pk, int(i[FEATURE_TS]["N"]), int(i[VERSION]["N"]), None, json.dumps(i))
                        for pk, i in backup.items()
                    ],
                )
            return
        client = dynamodb_client(self.endpoint)
        for pk in scan(self.endpoint, table):
            client.delete_item(TableName=table, Key={"pk": {"S": pk}})
        for item in backup.values():
            client.put_item(TableName=table, Item=item)

    def delete(self, project: Path, key: str) -> None:
        """Delete one item behind sync's back."""
        table = self.table(project)
        if self.endpoint is None:
            with closing(sqlite3.connect(table)) as connection, connection:
                connection.execute("delete from items where pk = ?", (key,))
            return
        dynamodb_client(self.endpoint).delete_item(TableName=table, Key={"pk": {"S": key}})

    def put(self, project: Path, item: dict[str, Any]) -> None:
        """Write ``item`` to the project's store unconditionally (an older item injected behind sync's back)."""
        table = self.table(project)
        if self.endpoint is None:
            with closing(sqlite3.connect(table)) as connection, connection:
                connection.execute(
                    "insert or replace into items (pk, ts, version, expires, item) values (?, ?, ?, ?, ?)",
                    (item["pk"]["S"], int(item[FEATURE_TS]["N"]), int(item[VERSION]["N"]), None, json.dumps(item)),
                )
            return
        dynamodb_client(self.endpoint).put_item(TableName=table, Item=item)

    def has_table(self, project: Path) -> bool:
        """Whether the project's store has been created."""
        table = self.table(project)
        if self.endpoint is None:
            return Path(table).exists()
        return table in dynamodb_client(self.endpoint).list_tables()["TableNames"]

    def assert_same_items(self, actual: Items, expected: Items) -> None:
        """The same items but for the sync's marks; on a store that deletes expired items, an item
        expired at ``NOW`` may be missing from either side."""
        unmatched = actual.keys() ^ expected.keys()
        if self.deletes_expired:
            assert all(expired({**expected, **actual}[pk]) for pk in unmatched), sorted(unmatched)[:10]
        else:
            assert not unmatched, sorted(unmatched)[:10]
        assert_same_items(
            {pk: item for pk, item in actual.items() if pk not in unmatched},
            {pk: item for pk, item in expected.items() if pk not in unmatched},
        )


LOCAL = OnlineStoreTarget("local")


def sync(
    project: Path,
    now: datetime = NOW,
    select: tuple[str, ...] = (),
    variables: Mapping[str, Any] = VARS,
    *,
    full: bool = False,
) -> dict[str, tuple[int, int, int]]:
    """``run_sync`` on the project's target: (changed, written, skipped) per model."""
    return {
        m.model: (m.changed, m.written, m.skipped)
        for m in sync_result(project, now, select, variables, full=full).models
    }


def sync_result(
    project: Path,
    now: datetime = NOW,
    select: tuple[str, ...] = (),
    variables: Mapping[str, Any] = VARS,
    **options: Any,
) -> SyncResult:
    """``run_sync`` on the project's target (``options``: full, repair, sample)."""
    with Context(project, variables=dict(variables)) as context:
        return run_sync(context, select, now=now, **options)


@pytest.fixture(scope="module", params=[pytest.param(name, marks=getattr(pytest.mark, name)) for name in STORES])
def online_store(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OnlineStoreTarget]:
    """Each online store in turn (DynamoDB Local started for the module)."""
    if request.param == "local":
        yield LOCAL
        return
    with dynamodb_local_with_credentials(tmp_path_factory.mktemp("dynamodb")) as endpoint:
        yield OnlineStoreTarget("dynamodb", endpoint)


def use_dynamodb(project: Path, endpoint_url: str, table: str, workers: int = 3) -> None:
    """Make the project's dev target (DuckDB, its built file) sync to DynamoDB ``table`` at ``endpoint_url``."""
    (project / "profiles.yml").write_text(
        "target: dev\ntargets:\n  dev:\n    type: duckdb\n    path: target/cash_advance.duckdb\n"
        f"    online: {{store: dynamodb, table: {table}, endpoint_url: '{endpoint_url}', "
        f"region: {REGION}, workers: {workers}}}\n",
        encoding="utf-8",
    )


def scan(endpoint: DynamoEndpoint, table: str) -> Items:
    """Every item of a DynamoDB table, by partition key."""
    pages = dynamodb_client(endpoint).get_paginator("scan").paginate(TableName=table)
    return {item["pk"]["S"]: item for page in pages for item in page["Items"]}


def table_name(label: str) -> str:
    """A DynamoDB table name no other test uses: ``t<n>_<label>`` (``label``: a test's name)."""
    return f"t{next(_tables)}_" + re.sub(r"[^A-Za-z0-9_.-]+", "_", label)[:200]


def expired(item: Mapping[str, Any], at: datetime = NOW) -> bool:
    """Whether the item no longer answers at ``at`` (as the reader reads it: ``_exp`` reached)."""
    return EXPIRES in item and int(item[EXPIRES]["N"]) <= int(at.timestamp() * 1_000_000)


def same_value(online: Any, offline: Any) -> bool:
    """The reader's JSON value (decimals as ``Decimal``) equals the extract's."""
    if isinstance(offline, float):
        return isinstance(online, int | Decimal) and math.isclose(float(online), offline, rel_tol=1e-12)
    if isinstance(offline, Decimal):
        return isinstance(online, int | Decimal) and Decimal(online) == offline
    if isinstance(offline, datetime):
        return bool(online == offline.strftime("%Y-%m-%dT%H:%M:%S") + "Z")
    return type(online) is type(offline) and bool(online == offline)


def large_items(count: int = 100, size: int = 50_000) -> list[dict[str, Any]]:
    """``count`` items of ``size`` bytes each (a note of x's): 100 of 50 KB are over a DynamoDB transaction's 4 MB."""
    return [
        {"pk": {"S": f"big#[{n}]"}, FEATURE_TS: {"N": "1"}, VERSION: {"N": "1"}, "note": {"S": "x" * size}}
        for n in range(count)
    ]


def without_sync_marks(stored: Items) -> Items:
    return {pk: {k: v for k, v in item.items() if k not in (VERSION, RUN)} for pk, item in stored.items()}


def assert_same_items(actual: Items, expected: Items, rel_tol: float = 0.0) -> None:
    """Equal but for the sync's marks; numbers within ``rel_tol`` relative (two builds of the same
    data may sum doubles in different orders: DuckDB sums in parallel)."""
    actual, expected = without_sync_marks(actual), without_sync_marks(expected)
    assert actual.keys() == expected.keys()
    for pk, item in expected.items():
        assert actual[pk].keys() == item.keys(), pk
        for name, value in item.items():
            got = actual[pk][name]
            if rel_tol and "N" in value and "N" in got:
                assert math.isclose(float(got["N"]), float(value["N"]), rel_tol=rel_tol, abs_tol=rel_tol), (pk, name)
            else:
                assert got == value, (pk, name)
