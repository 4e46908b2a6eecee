"""Sources read from files (``external:`` in sources.yml), and paths relative to the project.

A model over a file source builds the same table as the same model over the same rows
loaded into a warehouse table (the path the oracle tests cover), on DuckDB (a view over
the files), Snowflake and BigQuery (the file loaded at the start of the run). Bad files
are one-line errors naming sources.yml and the fix; paths in hooks, models and
sources resolve against the project folder whatever the working directory.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest
from cli_process import run as run_process
from engines import Engine, canonical_rows, differences, write_profile
from projects import duckdb_profile, write_project
from sqlglot import exp

from featuresql.context import Context

NOW = "2024-01-20T00:00:00"
COLUMNS = [
    {"name": "user_id", "type": "bigint"},
    {"name": "ts", "type": "timestamp"},
    {"name": "amount", "type": "decimal(12,2)"},
    {"name": "note", "type": "varchar"},
]
WINDOW = """{{ config(entity='user', timestamp='ts', grain='1 day') }}
select user_id, ts,
    {{ window_count(windows=['1d', '7d']) }},
    {{ window_sum('amount', windows=['1d', '7d']) }},
    {{ window_count_distinct('note', windows=['7d']) }}
from {{ source('raw', 'events') }}
"""


def events() -> pa.Table:
    rows = []
    for i in range(300):
        rows.append(
            {
                "user_id": 1 + i % 7,
                "ts": datetime(2024, 1, 1) + (datetime(2024, 1, 1, 0, 0, 37) - datetime(2024, 1, 1)) * (i * 131),
                "amount": None if i % 11 == 0 else Decimal(i % 97) / 4,
                "note": None if i % 5 == 0 else f"n{i % 4}",
            }
        )
    schema = pa.schema(
        [("user_id", pa.int64()), ("ts", pa.timestamp("us")), ("amount", pa.decimal128(12, 2)), ("note", pa.string())]
    )
    return pa.Table.from_pylist(rows, schema=schema)


def file_project(folder: Path, table: dict[str, Any], profile: dict[str, Any] | None = None) -> Path:
    project = write_project(
        folder,
        "files",
        entities={"user": {"user_id": "bigint"}},
        tables={"events": {"event_time": "ts", "columns": COLUMNS, **table}},
        models={"w": WINDOW},
        profile=profile or duckdb_profile(folder / "target" / "files.duckdb"),
    )
    return project


def window_rows(project: Path) -> list[dict[str, Any]]:
    with Context(project) as context:
        rows = canonical_rows(context.query(exp.select("*").from_(context.compiled.models["w"].relation.copy())))
    return sorted(rows, key=lambda row: (row["user_id"], row["ts"]))


def table_build(folder: Path, data: pa.Table, profile: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """The reference: the same model over the same rows loaded into raw.events."""
    project = file_project(folder, {}, profile)
    with Context(project) as context:
        context.adapter.ensure_schema("raw")
        context.adapter.load_table(exp.table_("events", db="raw"), data)
        context.run(now=datetime.fromisoformat(NOW))
    return window_rows(project)


def write_files(folder: Path, data: pa.Table) -> None:
    (folder / "data" / "parts").mkdir(parents=True, exist_ok=True)
    half = data.num_rows // 2
    pq.write_table(data.slice(0, half), folder / "data" / "parts" / "a.parquet")
    pq.write_table(data.slice(half), folder / "data" / "parts" / "b.parquet")
    pacsv.write_csv(data, folder / "data" / "events.csv")
    connection = duckdb.connect()
    connection.register("events", data)
    connection.execute(f"copy events to '{folder / 'data' / 'events.jsonl'}' (format json)")
    connection.close()


@pytest.mark.duckdb
@pytest.mark.parametrize(
    "table",
    [
        pytest.param({"external": {"location": "data/parts/*.parquet"}}, id="parquet-glob"),
        pytest.param({"external": "data/events.csv"}, id="csv-declared-types"),
        pytest.param({"external": {"location": "data/events.jsonl"}}, id="json-lines"),
        pytest.param({"meta": {"external_location": "data/events.csv"}}, id="dbt-duckdb-meta"),
    ],
)
def test_a_file_source_builds_what_the_same_rows_in_a_table_build(
    table: dict[str, Any], tmp_path: Path, cli: Any
) -> None:
    data = events()
    project = file_project(tmp_path / "p", table)
    write_files(project, data)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # From another folder: the location is the project's, not the working directory's.
    built = run_process(elsewhere, "--project-dir", str(project), "run", "--now", NOW, variables=None)
    assert built.exit_code == 0, built.stdout + built.stderr
    got, want = window_rows(project), table_build(tmp_path / "reference", data)
    assert len(want) > 100
    problems = differences(got, want)
    assert not problems, "\n".join(problems)
    tested = run_process(elsewhere, "--project-dir", str(project), "test", "--now", NOW, variables=None)
    assert tested.exit_code == 0, tested.stdout + tested.stderr
    with Context(project) as context:  # a view: the files as they are now
        relation = context.project.sources["raw.events"].relation
        assert context.adapter.table_columns(relation) is not None


@pytest.mark.duckdb
@pytest.mark.parametrize(
    ("table", "files", "message"),
    [
        pytest.param(
            {"external": "data/missing/*.parquet"},
            {},
            "features/sources.yml:6: source raw.events: no file matches 'data/missing/*.parquet' (looked for ",
            id="no-file",
        ),
        pytest.param(
            {"external": "data/events.dat"},
            {"data/events.dat": "x"},
            "features/sources.yml:6: source raw.events: cannot tell the format of 'data/events.dat' from its "
            "extension: add format: parquet, csv or json under external:",
            id="unknown-format",
        ),
        pytest.param(
            {"external": {"location": "data/x.csv", "options": {"bad name": 1}}},
            {"data/x.csv": "user_id\n"},
            "invalid value for 'sources.0.tables.0.external.options': option 'bad name' is "
            "not a reader parameter name (letters, digits, underscores)",
            id="bad-option-name",
        ),
    ],
)
def test_bad_file_sources_are_one_line_errors(
    table: dict[str, Any], files: dict[str, str], message: str, tmp_path: Path, cli: Any
) -> None:
    project = file_project(tmp_path / "p", table)
    for relative, text in files.items():
        (project / relative).parent.mkdir(parents=True, exist_ok=True)
        (project / relative).write_text(text, encoding="utf-8")
    result = cli(project, "run", "--now", NOW)
    assert result.exit_code == 2
    line = result.stderr.strip()
    assert "\n" not in line and line.startswith("Error: features/sources.yml:") and message in line, line
    assert not (project / "target" / "files.duckdb").exists() or not _model_built(project)


@pytest.mark.duckdb
@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        pytest.param(
            "bad.csv",
            "user_id,ts,amount,note\n1,2024-01-02 10:00:00,2.5,a\n2,2024-01-03 10:00:00,lots,b\n",
            "column 'amount' is declared decimal(12,2) but reads from 'data/bad.csv' as VARCHAR: declare the type "
            "its values have (or fix the file)",
            id="text-in-a-number-column",
        ),
        pytest.param(
            "zoned.csv",
            "user_id,ts,amount,note\n1,2024-01-02 23:30:00+02:00,2.5,a\n",
            "column 'ts' is declared timestamp but reads from 'data/zoned.csv' as TIMESTAMP WITH TIME ZONE: declare "
            "the type its values have (or fix the file)",
            id="zoned-time-as-a-zoneless-one",
        ),
        pytest.param(
            "renamed.jsonl",
            '{"user_id": 1, "ts": "2024-01-02 10:00:00", "amt": 2.5, "note": "a"}\n',
            "column 'amount' is declared but 'data/renamed.jsonl' has no such column (did you mean amt?) (its "
            "columns: user_id, ts, amt, note): fix the name in sources.yml",
            id="json-key-missing",
        ),
    ],
)
def test_a_file_not_matching_its_declared_columns_is_refused_before_reading(
    name: str, text: str, message: str, tmp_path: Path, cli: Any
) -> None:
    """Never NULLs for a missing key, an offset dropped or text cast: the file and the declaration differ."""
    project = file_project(tmp_path / "p", {"external": f"data/{name}"})
    (project / "data").mkdir()
    (project / "data" / name).write_text(text, encoding="utf-8")
    result = cli(project, "run", "--now", NOW)
    assert result.exit_code == 2
    assert result.stderr.strip() == f"Error: features/sources.yml:6: source raw.events: {message}", result.stderr
    assert not _model_built(project)


@pytest.mark.duckdb
def test_a_bad_value_past_the_sniffed_sample_fails_the_model(tmp_path: Path, cli: Any) -> None:
    """Parsed with the declared types: 'lots' in a decimal column is an error, never NULL or a cast."""
    project = file_project(tmp_path / "p", {"external": "data/late.csv"})
    (project / "data").mkdir()
    rows = [f"{i % 5},2024-01-0{1 + i % 9} 10:00:00,{i % 7}.25,n" for i in range(30_000)]
    text = "user_id,ts,amount,note\n" + "\n".join(rows) + "\n1,2024-01-02 10:00:00,lots,b\n"
    (project / "data" / "late.csv").write_text(text, encoding="utf-8")
    result = cli(project, "run", "--now", NOW)
    assert result.exit_code == 1
    assert ("ERROR w" in result.stdout and "Could not convert string" in result.stdout) or "CSV Error" in result.stdout
    assert not _model_built(project)


@pytest.mark.duckdb
def test_parquet_files_of_a_glob_are_read_by_column_name(tmp_path: Path, cli: Any) -> None:
    """Files written with their columns in another order (and one more column) read as one table."""
    data = events()
    project = file_project(tmp_path / "p", {"external": {"location": "data/parts/*.parquet"}})
    (project / "data" / "parts").mkdir(parents=True)
    pq.write_table(data.slice(0, 100), project / "data" / "parts" / "a.parquet")
    reordered = (
        data.slice(100).select(["note", "amount", "ts", "user_id"]).append_column("extra", pa.array(["x"] * 200))
    )
    pq.write_table(reordered, project / "data" / "parts" / "b.parquet")
    result = cli(project, "run", "--now", NOW)
    assert result.exit_code == 0, result.stdout + result.stderr
    problems = differences(window_rows(project), table_build(tmp_path / "reference", data))
    assert not problems, "\n".join(problems)


@pytest.mark.duckdb
def test_only_the_file_sources_a_command_reads_are_opened(tmp_path: Path, cli: Any) -> None:
    """A missing file of a source no selected model reads does not stop the run."""
    data = events()
    project = write_project(
        tmp_path / "p",
        "files",
        entities={"user": {"user_id": "bigint"}},
        tables={
            "events": {"event_time": "ts", "columns": COLUMNS, "external": "data/parts/*.parquet"},
            "other": {"columns": COLUMNS, "external": "data/missing.parquet"},
        },
        models={"w": WINDOW},
        profile=duckdb_profile(tmp_path / "p" / "target" / "files.duckdb"),
    )
    write_files(project, data)
    result = cli(project, "run", "--now", NOW, "-s", "w")
    assert result.exit_code == 0, result.stdout + result.stderr
    tested = cli(project, "test", "--now", NOW, "-s", "w")
    assert tested.exit_code == 0, tested.stdout + tested.stderr


def _model_built(project: Path) -> bool:
    with Context(project) as context:
        return context.adapter.table_columns(context.compiled.models["w"].relation) is not None


@pytest.mark.duckdb
def test_paths_in_hooks_and_models_are_the_projects(tmp_path: Path) -> None:
    """``read_parquet('data/...')`` in a hook and in a model, and ``{{ project_dir }}``, from another folder."""
    data = events()
    project = write_project(
        tmp_path / "p",
        "paths",
        entities={"user": {"user_id": "bigint"}},
        tables={"events": {"event_time": "ts", "columns": COLUMNS}},
        models={
            "w": WINDOW,
            "notes": "{{ config(entity='user', timestamp='ts') }}\nselect user_id, ts, note\n"
            "from read_parquet('{{ project_dir }}/data/parts/*.parquet') where note is not null",
        },
        settings={
            "on_run_start": [
                "create schema if not exists raw",
                "create or replace table raw.events as select * from read_parquet('data/parts/*.parquet')",
            ]
        },
        profile=duckdb_profile(Path("target/paths.duckdb")),  # relative: the project's target/
    )
    write_files(project, data)
    elsewhere = tmp_path / "elsewhere"
    write_files(elsewhere, data.slice(0, 10))  # a decoy at the same relative path, where the command is typed
    built = run_process(elsewhere, "--project-dir", str(project), "run", "--now", NOW, variables=None)
    assert built.exit_code == 0, built.stdout + built.stderr
    assert (project / "target" / "paths.duckdb").is_file() and not (elsewhere / "target").exists()
    problems = differences(window_rows(project), table_build(tmp_path / "reference", data))
    assert not problems, "\n".join(problems)


# -- every engine: DuckDB reads the files anew, Snowflake and BigQuery load them at each run ---------


def test_a_local_file_source_is_loaded_on_every_engine(engine: Engine, tmp_path: Path, cli: Any) -> None:
    data = events()
    project = file_project(tmp_path / "p", {"external": {"location": "data/parts/*.parquet"}}, engine.target(tmp_path))
    write_files(project, data)
    first = cli(project, "run", "--now", "2024-01-10")
    assert first.exit_code == 0, first.stdout + first.stderr
    # A file added later: the next run reads every file (DuckDB's view) or replaces the table with them.
    later = pa.Table.from_pylist(
        [{"user_id": 1, "ts": datetime(2024, 1, 15, 12), "amount": Decimal("2.50"), "note": "late"}],
        schema=data.schema,
    )
    pq.write_table(later, project / "data" / "parts" / "c.parquet")
    second = cli(project, "run", "--now", NOW)
    assert second.exit_code == 0, second.stdout + second.stderr
    both = pa.concat_tables([data, later])
    reference = table_build(tmp_path / "reference", both, engine.target(tmp_path / "reference"))
    problems = differences(window_rows(project), reference)
    assert not problems, f"{engine.name}:\n" + "\n".join(problems)
    with Context(project) as context:
        loaded = context.query(exp.select(exp.func("COUNT", exp.Star())).from_(exp.table_("events", db="raw")))
        assert loaded.column(0)[0].as_py() == both.num_rows  # replaced, not appended


@pytest.mark.snowflake
def test_a_url_location_is_refused_where_the_warehouse_cannot_read_it(
    fakesnow_server: Any, tmp_path: Path, cli: Any
) -> None:
    from engines import snowflake_settings

    project = file_project(tmp_path / "p", {"external": "s3://bucket/events/*.parquet"})
    write_profile(project, snowflake_settings(fakesnow_server), name="dev")
    result = cli(project, "run", "--now", NOW)
    assert result.exit_code == 2
    assert "source raw.events: snowflake cannot read 's3://bucket/events/*.parquet' through featuresql: create an " in (
        result.stderr
    )
