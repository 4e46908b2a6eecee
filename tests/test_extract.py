"""`featuresql extract` and `featuresql.extract()` on the example project: inputs, outputs, errors.

The values themselves are checked against the oracle in test_extract_oracle.py;
here every way of passing a spine (warehouse table, parquet, csv, DataFrame,
Arrow, zoned times) must give the same table, every destination must hold it,
and every mistake must give a one-line error and exit code 2 with nothing written.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from conftest import CliResult
from projects import SMALL_VARS, SMALL_VARS_ARG, USER_TRANSACTIONS_FEATURES, copy_example

import featuresql
from featuresql.context import Context
from featuresql.errors import ConfigError

pytestmark = pytest.mark.duckdb

SPINE_ROWS = 300


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project, built once with small demo data, and a spine table in it."""
    project = copy_example(tmp_path_factory.mktemp("extract") / "cash_advance")
    with Context(project, variables=SMALL_VARS) as context:
        assert context.run().ok
        context.adapter.execute(
            f"create table main.labels as select transaction_id, user_id, merchant_id, ts + interval 90 minute as ts, "
            f"(transaction_id % 3 = 0) as label from raw.transactions order by transaction_id desc limit {SPINE_ROWS}"
        )
    return project


@pytest.fixture(scope="module")
def spine(built: Path) -> pa.Table:
    with duckdb.connect(str(built / "target" / "cash_advance.duckdb"), read_only=True) as connection:
        return connection.sql("select * from main.labels").to_arrow_table()


def extract(project: Path, spine: Any, features: Any = "user_transactions", **options: Any) -> pa.Table:
    return featuresql.extract(spine, features, project_dir=project, variables=SMALL_VARS, **options)


@pytest.fixture(scope="module")
def reference(built: Path, spine: pa.Table) -> pa.Table:
    return extract(built, spine, ["user_transactions", "merchant_transactions.count_7d", "user_profile.plan"])


def test_output_columns_rows_and_order(reference: pa.Table, spine: pa.Table) -> None:
    assert reference.column_names == [
        *spine.column_names,
        *(f"user_transactions__{f}" for f in USER_TRANSACTIONS_FEATURES),
        "merchant_transactions__count_7d",
        "user_profile__plan",
    ]
    assert reference.select(spine.column_names).equals(spine)
    assert reference.num_rows == SPINE_ROWS
    assert reference.schema.field("user_transactions__count_7d").type == pa.int64()
    counts = reference.column("user_transactions__count_30d").to_pylist()
    assert None not in counts and max(counts) > 0


def test_every_spine_input_gives_the_same_table(
    built: Path, spine: pa.Table, reference: pa.Table, tmp_path: Path
) -> None:
    features = ["user_transactions", "merchant_transactions.count_7d", "user_profile.plan"]
    pq.write_table(spine, tmp_path / "spine.parquet")
    pcsv.write_csv(spine, tmp_path / "spine.csv")
    inputs: dict[str, Any] = {
        "table": "labels",
        "qualified table": "main.labels",
        "parquet path": str(tmp_path / "spine.parquet"),
        "parquet Path": tmp_path / "spine.parquet",
        "DataFrame": spine.to_pandas(),
    }
    for name, source in inputs.items():
        assert extract(built, source, features).equals(reference), name
    from_csv = extract(built, str(tmp_path / "spine.csv"), features)
    assert from_csv.drop_columns(["ts"]).equals(reference.drop_columns(["ts"])), "csv"


def test_zoned_spine_times_are_converted_to_utc(
    built: Path, spine: pa.Table, reference: pa.Table, tmp_path: Path
) -> None:
    path = tmp_path / "zoned.parquet"
    paris = timezone(timedelta(hours=2))
    times = [t.replace(tzinfo=UTC).astimezone(paris) for t in spine.column("ts").to_pylist()]
    zoned = spine.set_column(
        spine.schema.get_field_index("ts"), "ts", pa.array(times, pa.timestamp("us", "Europe/Paris"))
    )
    features = ["user_transactions", "merchant_transactions.count_7d", "user_profile.plan"]
    pq.write_table(zoned.cast(zoned.schema.set(3, pa.field("ts", pa.timestamp("ns", "Europe/Paris")))), path)
    for source in (zoned, path):  # through Arrow, and loaded by DuckDB itself from parquet
        result = extract(built, source, features)
        assert result.drop_columns(["ts"]).equals(reference.drop_columns(["ts"])), source
        assert result.column("ts").cast(pa.timestamp("us")).equals(reference.column("ts"))  # the same instants


def test_a_zoned_warehouse_table_is_converted_too(built: Path, reference: pa.Table) -> None:
    with Context(built, variables=SMALL_VARS) as context:
        context.adapter.execute(
            "create or replace table main.zoned_labels as select * replace (ts::timestamptz as ts) from main.labels"
        )
        result = context.extract("zoned_labels", ["user_transactions"]).table
    assert result is not None
    columns = [f"user_transactions__{f}" for f in USER_TRANSACTIONS_FEATURES]
    assert result.select(columns).equals(reference.select(columns))


def test_timestamp_column_option(built: Path, spine: pa.Table) -> None:
    renamed = spine.rename_columns([("label_time" if c == "ts" else c) for c in spine.column_names])
    result = extract(built, renamed, "user_transactions.count_7d", timestamp_column="label_time")
    expected = extract(built, spine, "user_transactions.count_7d")
    assert result.column("user_transactions__count_7d").equals(expected.column("user_transactions__count_7d"))


def test_event_timestamp_is_found_by_name(built: Path, spine: pa.Table) -> None:
    renamed = spine.rename_columns([("event_timestamp" if c == "ts" else c) for c in spine.column_names])
    assert extract(built, renamed, "user_transactions.count_7d").num_rows == SPINE_ROWS


def test_an_empty_spine_gives_an_empty_table(built: Path, spine: pa.Table) -> None:
    result = extract(built, spine.slice(0, 0), "user_transactions.count_7d")
    assert result.num_rows == 0 and result.column_names[-1] == "user_transactions__count_7d"


def test_the_temporary_spine_table_is_dropped(built: Path, spine: pa.Table) -> None:
    with Context(built, variables=SMALL_VARS) as context:
        context.extract(spine, "user_transactions.count_7d")
        left = context.query("select table_name from duckdb_tables() where table_name like '__featuresql%'")
    assert left.num_rows == 0


# -- the CLI ------------------------------------------------------------------------


def test_cli_writes_parquet_csv_and_warehouse_tables(
    built: Path, reference: pa.Table, tmp_path: Path, cli: Callable[..., CliResult]
) -> None:
    features = ("-f", "user_transactions", "--features", "merchant_transactions.count_7d,user_profile.plan")
    out = tmp_path / "nested" / "training.parquet"
    result = cli(built, "--vars", SMALL_VARS_ARG, "extract", "--spine", "labels", *features, "--out", str(out))
    assert result.exit_code == 0, result.stderr
    assert f"Extracted {SPINE_ROWS} rows with 14 features from 3 models" in result.stdout
    assert_same_table(pq.read_table(out), reference)
    assert not list(out.parent.glob(".*partial"))

    csv_out = tmp_path / "training.csv"
    result = cli(built, "--vars", SMALL_VARS_ARG, "extract", "--spine", "labels", *features, "-o", str(csv_out))
    assert result.exit_code == 0, result.stderr
    assert pcsv.read_csv(csv_out).num_rows == SPINE_ROWS

    result = cli(built, "--vars", SMALL_VARS_ARG, "extract", "--spine", "labels", *features, "--out", "table:training")
    assert result.exit_code == 0, result.stderr
    with Context(built, variables=SMALL_VARS) as context:
        stored = context.query("select * from main.training")
    assert stored.num_rows == SPINE_ROWS
    assert sorted(stored.to_pylist(), key=_pylist_key) == sorted(reference.to_pylist(), key=_pylist_key)


def assert_same_table(actual: pa.Table, expected: pa.Table) -> None:
    """Same names, types and values (DuckDB marks some Arrow fields not-null; parquet readers do not)."""
    assert [(f.name, f.type) for f in actual.schema] == [(f.name, f.type) for f in expected.schema]
    assert actual.to_pylist() == expected.to_pylist()


def _pylist_key(row: dict[str, Any]) -> str:
    return json.dumps(row, default=str, sort_keys=True)


# -- errors -------------------------------------------------------------------------

ERRORS = [
    (
        ("--spine", "labels", "-f", "user_transaction", "--out", "x.parquet"),
        "unknown model 'user_transaction' in --features (did you mean user_transactions?)",
    ),
    (
        ("--spine", "labels", "-f", "user_transactions.count_8d", "--out", "x.parquet"),
        "model 'user_transactions' has no feature 'count_8d' (did you mean count_7d?)",
    ),
    (
        ("--spine", "labels", "-f", "user_transactions.ts", "--out", "x.parquet"),
        "model 'user_transactions' has no feature 'ts'",
    ),
    (
        ("--spine", "no_such_table", "-f", "user_transactions", "--out", "x.parquet"),
        "spine table main.no_such_table does not exist on the target",
    ),
    (
        ("--spine", "missing.parquet", "-f", "user_transactions", "--out", "x.parquet"),
        "spine file missing.parquet does not exist",
    ),
    (
        ("--spine", "labels", "-f", "user_transactions", "--out", "x.json"),
        "--out 'x.json' must end in .parquet or .csv, or be table:NAME",
    ),
    (
        ("--spine", "labels", "-f", "merchant_transactions", "--out", "x.parquet", "--timestamp-column", "when"),
        "spine table main.labels has no column 'when' (--timestamp-column)",
    ),
]


@pytest.mark.parametrize(("arguments", "message"), ERRORS, ids=[e[1][:40] for e in ERRORS])
def test_mistakes_give_one_line_errors(
    built: Path, cli: Callable[..., CliResult], arguments: tuple[str, ...], message: str
) -> None:
    result = cli(built, "--vars", SMALL_VARS_ARG, "extract", *arguments)
    assert result.exit_code == 2, result.stdout
    assert len(result.stderr_lines) == 1 and message in result.stderr_lines[0], result.stderr
    assert not (built / "x.parquet").exists()


def spine_with(spine: pa.Table, name: str, values: pa.Array) -> pa.Table:
    return spine.set_column(spine.schema.get_field_index(name), name, values)


def test_spine_type_and_column_errors(built: Path, spine: pa.Table) -> None:
    def error(data: pa.Table, features: str = "user_transactions") -> str:
        with pytest.raises(ConfigError) as raised:
            extract(built, data, features)
        return raised.value.one_line()

    assert "has no column 'merchant_id', the key of entity 'merchant'" in error(
        spine.drop_columns(["merchant_id"]), "merchant_transactions"
    )
    as_text = spine_with(spine, "user_id", spine.column("user_id").cast(pa.string()))
    assert "column 'user_id' is of type string, but entity 'user' keys 'user_id' as integer" in error(as_text)
    as_float = spine_with(spine, "user_id", spine.column("user_id").cast(pa.float64()))
    assert "use dtype 'Int64'" in error(as_float)
    as_date = spine_with(spine, "ts", spine.column("ts").cast(pa.date32()))
    assert "time column 'ts' is of type date, not a timestamp" in error(as_date)
    no_time = spine.drop_columns(["ts"])
    assert "has no timestamp column (looked for ts, event_timestamp, timestamp)" in error(no_time)
    clash = spine.append_column("user_transactions__count_7d", pa.array([0] * spine.num_rows))
    assert "already has a column 'user_transactions__count_7d'" in error(clash)


def test_a_model_not_built_yet_is_named(tmp_path: Path, spine: pa.Table) -> None:
    project = copy_example(tmp_path / "fresh")
    with pytest.raises(
        ConfigError,
        match=r"model 'user_transactions' has not been built on target 'dev': run "
        r"`featuresql run --select user_transactions` first",
    ):
        extract(project, spine)


def test_cli_as_a_process_exits_2_without_a_traceback(built: Path, cli_process: Callable[..., CliResult]) -> None:
    result = cli_process(built, "--vars", SMALL_VARS_ARG, "extract", "--spine", "labels", "-f", "nope", "-o", "x.csv")
    assert result.exit_code == 2
    assert "Traceback" not in result.stderr and "unknown model 'nope'" in result.stderr


def test_the_as_of_join_model_equals_the_extract_of_its_spine(built: Path) -> None:
    features = ["user_transactions", "user_balances.balance", "user_profile"]
    with Context(built, variables=SMALL_VARS) as context:
        materialised = context.query("select * from main.advance_training").to_pylist()
        extracted = context.extract("advance_labels", features).table
    assert extracted is not None and len(materialised) == extracted.num_rows > 100
    assert sorted(materialised, key=_pylist_key) == sorted(extracted.to_pylist(), key=_pylist_key)


def test_as_of_join_errors_name_the_model(make_project: Callable[..., Path], cli: Callable[..., CliResult]) -> None:
    training = "features/advance_training.sql"
    cases = {
        "['user_transactions', 'user_profile.plann']": "model 'user_profile' has no feature 'plann' "
        "(did you mean plan?)",
        "['user_transaction']": "refs unknown model 'user_transaction' (did you mean user_transactions?)",
        "['merchant_transactions']": "as_of_join spine main.advance_labels has no column 'merchant_id', the key of "
        "entity 'merchant'",
    }
    for number, (features, message) in enumerate(cases.items()):
        old = "['user_transactions', 'user_balances.balance', 'user_profile']"
        project = make_project([(training, old, features)], name=f"p{number}")
        result = cli(project, "compile")
        assert result.exit_code == 2, result.stdout
        assert len(result.stderr_lines) == 1 and message in result.stderr, result.stderr
        assert "advance_training.sql" in result.stderr
