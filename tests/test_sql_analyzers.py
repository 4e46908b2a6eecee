"""SQL analyzers as a guard: the SQL featuresql writes for BigQuery and Snowflake, checked as those engines read it.

The emulators run SQL on DuckDB and accept much that the real services refuse, so the
SQL itself is checked, both what ``featuresql compile`` writes (the golden files and a
fresh compile) and every statement a representative workload sends (``sql_capture.py``):

- BigQuery: ZetaSQL, the analyzer at the front of BigQuery (``zetasql_service.py``),
  resolves each statement, in order, against a catalog of the sources declared in
  sources.yml and the tables the statements create;
- Snowflake: sqlfluff's Snowflake parser (``sqlfluff_check.py``).

Negative controls show that each checker refuses what it must, each next to its
corrected twin that it accepts, and the number of statements checked is asserted, so
no check passes for want of SQL.
"""

from __future__ import annotations

import graphlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import sqlglot
import yaml
from engines import bigquery_settings, snowflake_settings, write_profile
from projects import REPO_ROOT, copy_example
from sql_capture import Capture, Loaded, Sent, demo_raw_tables, featuresql, run_workload
from sqlfluff_check import bind_parameters, parse_errors
from sqlglot import exp
from zetasql_service import BigQueryAnalyzer, arrow_bigquery_type, bigquery_type, excerpt, running_zetasql

from featuresql.run import state

GOLDEN = Path(__file__).resolve().parent / "golden"
SEPARATOR = ";\n\n"  # between the statements of a compiled file
MIN_CAPTURED = 150  # statements the workload sends to each warehouse (about 250 in practice)
MODEL_SCHEMA = "features"


# -- compiled files ---------------------------------------------------------------------------


def compiled_statements(folder: Path) -> dict[str, list[str]]:
    """Each model file's statements (``name.sql`` -> statements), as ``featuresql compile`` writes them."""
    files = {path.stem: path.read_text(encoding="utf-8") for path in sorted(folder.glob("*.sql"))}
    return {
        name: [s for s in text.strip().removesuffix(";").split(SEPARATOR) if s.strip()] for name, text in files.items()
    }


def in_build_order(models: dict[str, list[str]], dialect: str) -> list[str]:
    """Model names, each after the models whose tables its statements read."""
    graph: dict[str, set[str]] = {}
    for name, statements in models.items():
        tables = {t.name for s in statements for t in sqlglot.parse_one(s, read=dialect).find_all(exp.Table)}
        graph[name] = (tables & set(models)) - {name}
    return list(graphlib.TopologicalSorter(graph).static_order())


# Targets that `featuresql compile` needs no connection for.
COMPILE_TARGETS = {
    "bigquery": {"type": "bigquery", "project": "compile-only", "dataset": MODEL_SCHEMA, "method": "anonymous"},
    "snowflake": {
        "type": "snowflake",
        "account": "compile-only",
        "user": "nobody",
        "authenticator": "externalbrowser",
        "database": "ANALYTICS",
        "schema": MODEL_SCHEMA,
    },
}


@pytest.fixture(scope="module")
def compiled(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """What ``featuresql compile`` writes for a BigQuery and a Snowflake target (offline: nothing connects)."""
    folders = {}
    for dialect, settings in COMPILE_TARGETS.items():
        project = copy_example(tmp_path_factory.mktemp(f"compile_{dialect}") / "project")
        write_profile(project, settings, name=dialect)
        code, output = featuresql("--project-dir", str(project), "compile")
        assert code == 0, output
        folders[dialect] = project / "target" / "compiled" / dialect
    return folders


def sql_files(source: str, dialect: str, compiled: dict[str, Path]) -> dict[str, list[str]]:
    folder = GOLDEN / dialect if source == "golden" else compiled[dialect]
    models = compiled_statements(folder)
    assert len(models) >= 7, f"expected the example project's 7 models in {folder}, found {sorted(models)}"
    return models


# -- BigQuery: ZetaSQL ------------------------------------------------------------------------


def declared_sources(project: Path) -> dict[tuple[str, str], list[tuple[str, str]]]:
    """The tables sources.yml declares, with their columns' BigQuery types."""
    dialect = (yaml.safe_load((project / "project.yml").read_text()) or {}).get("dialect", "duckdb")
    tables = {}
    for source in yaml.safe_load((project / "features" / "sources.yml").read_text())["sources"]:
        for table in source["tables"]:
            columns = [
                (c["name"], bigquery_type(exp.DataType.build(c["type"], dialect=dialect))) for c in table["columns"]
            ]
            tables[(source.get("schema", source["name"]), table["name"])] = columns
    return tables


SOURCES = declared_sources(REPO_ROOT)


@pytest.fixture(scope="module")
def zetasql_port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    with running_zetasql(tmp_path_factory.mktemp("zetasql")) as port:
        yield port


@pytest.fixture
def analyzer(zetasql_port: int) -> Iterator[BigQueryAnalyzer]:
    """A fresh analyzer whose catalog holds the example project's declared sources."""
    analyzer = BigQueryAnalyzer(zetasql_port, default_dataset=MODEL_SCHEMA)
    for (dataset, name), columns in SOURCES.items():
        analyzer.add_table(dataset, name, columns)
    # The interval state an extract's coverage join reads (created by the first run).
    intervals = state.TABLES["intervals"].items()
    analyzer.add_table(
        state.SCHEMA, "intervals", [(name, bigquery_type(exp.DataType.build(kind))) for name, kind in intervals]
    )
    yield analyzer
    analyzer.close()


def rejection(sql: str, message: str) -> str:
    return f"{message}\n    at: {excerpt(sql, message)}\n    statement: {sql[:300]}{'...' if len(sql) > 300 else ''}"


@pytest.mark.zetasql
@pytest.mark.parametrize("source", ["golden", "compiled"])
def test_zetasql_accepts_the_compiled_bigquery_models(
    source: str, compiled: dict[str, Path], analyzer: BigQueryAnalyzer
) -> None:
    models = sql_files(source, "bigquery", compiled)
    rejected, checked = [], 0
    for name in in_build_order(models, "bigquery"):
        for statement in models[name]:
            checked += 1
            message = analyzer.analyze(statement)
            if message:
                rejected.append(f"{name}.sql: {rejection(statement, message)}")
    assert checked >= len(models)
    assert not rejected, f"ZetaSQL rejects {len(rejected)} of {checked} statements:\n" + "\n".join(rejected)


@pytest.fixture(scope="module")
def raw_tables(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pa.Table]:
    """The example project's raw tables (small), generated once on DuckDB."""
    return demo_raw_tables(tmp_path_factory.mktemp("raw"))


@pytest.fixture(scope="module")
def bigquery_capture(
    bigquery_server: Any, raw_tables: dict[str, pa.Table], tmp_path_factory: pytest.TempPathFactory
) -> Capture:
    """What the workload sends to the BigQuery emulator, and the tables it loads."""
    return run_workload(bigquery_settings(bigquery_server), tmp_path_factory.mktemp("bigquery_workload"), raw_tables)


@pytest.mark.zetasql
@pytest.mark.bigquery
def test_zetasql_accepts_every_statement_sent_to_bigquery(
    bigquery_capture: Capture, analyzer: BigQueryAnalyzer
) -> None:
    rejected, checked = [], 0
    for event in bigquery_capture.events:
        if event.dialect != "bigquery":
            continue  # `featuresql test` runs unit tests on an embedded DuckDB
        if isinstance(event, Loaded) and (event.dataset, event.table) not in SOURCES:  # a spine
            analyzer.add_table(
                event.dataset, event.table, [(f.name, arrow_bigquery_type(f.type)) for f in event.schema]
            )
        elif isinstance(event, Sent) and event.sql:
            checked += 1
            message = analyzer.analyze(event.sql)
            if message:
                rejected.append(rejection(event.sql, message))
    kinds = {sql.split(None, 1)[0].upper() for sql in bigquery_capture.statements("bigquery")}
    assert {"CREATE", "INSERT", "DELETE", "SELECT", "BEGIN", "COMMIT"} <= kinds, kinds
    assert checked >= MIN_CAPTURED, f"only {checked} statements captured: {bigquery_capture.commands}"
    assert not rejected, f"ZetaSQL rejects {len(rejected)} of {checked} statements:\n" + "\n".join(rejected)


# Each construct BigQuery refuses, what ZetaSQL says, and the corrected statement it accepts.
BIGQUERY_CONTROLS = [
    pytest.param(
        "SELECT amout FROM raw.transactions",
        "Unrecognized name: amout",
        "SELECT amount FROM raw.transactions",
        id="unknown-column",
    ),
    pytest.param(
        "SELECT * FROM raw.transaction",
        "Table not found: raw.transaction",
        "SELECT * FROM raw.transactions",
        id="unknown-table",
    ),
    pytest.param(
        "SELECT CAST(amount AS DOUBLE) FROM raw.transactions",
        "Type not found: DOUBLE",
        "SELECT CAST(amount AS FLOAT64) FROM raw.transactions",
        id="double-type",
    ),
    pytest.param(
        "SELECT amount::FLOAT64 FROM raw.transactions",
        'Syntax error: Expected end of input but got ":"',
        "SELECT CAST(amount AS FLOAT64) FROM raw.transactions",
        id="double-colon-cast",
    ),
    pytest.param(
        "SELECT DATEADD(day, 1, ts) FROM raw.transactions",
        "Function not found: DATEADD",
        "SELECT TIMESTAMP_ADD(ts, INTERVAL 1 DAY) FROM raw.transactions",
        id="dateadd",
    ),
    pytest.param(
        "SELECT ts + 86400 FROM raw.transactions",
        "No matching signature for operator + for argument types: TIMESTAMP, INT64",
        "SELECT ts + INTERVAL 86400 SECOND FROM raw.transactions",  # the INTERVAL type's operator
        id="timestamp-plus-int64",
    ),
    pytest.param(
        "INSERT INTO raw.users (user_id, plan) VALUES ('42', 'free')",
        "which cannot be inserted into column user_id, which has type INT64",
        "INSERT INTO raw.users (user_id, plan) VALUES (42, 'free')",
        id="insert-wrong-type",
    ),
    pytest.param(
        "SELECT TIMESTAMP '2026-07-01 00:00:00.123456789'",
        "Invalid TIMESTAMP literal",
        "SELECT TIMESTAMP '2026-07-01 00:00:00.123456'",
        id="nanosecond-timestamp",
    ),
]


@pytest.mark.zetasql
@pytest.mark.parametrize(("wrong", "message", "right"), BIGQUERY_CONTROLS)
def test_zetasql_rejects_what_bigquery_rejects(
    analyzer: BigQueryAnalyzer, wrong: str, message: str, right: str
) -> None:
    assert analyzer.analyze(right) is None, f"the corrected statement must pass: {right}"
    rejected = analyzer.analyze(wrong)
    assert rejected is not None, f"ZetaSQL accepted: {wrong}"
    assert message in rejected, rejected


# -- Snowflake: sqlfluff ----------------------------------------------------------------------


@pytest.mark.parametrize("source", ["golden", "compiled"])
def test_sqlfluff_parses_the_compiled_snowflake_models(source: str, compiled: dict[str, Path]) -> None:
    models = sql_files(source, "snowflake", compiled)
    unparsed = [
        f"{name}.sql: {errors}\n    statement: {statement[:300]}"
        for name, statements in models.items()
        for statement in statements
        if (errors := parse_errors(statement))
    ]
    assert not unparsed, "sqlfluff cannot parse:\n" + "\n".join(unparsed)


@pytest.fixture(scope="module")
def snowflake_capture(
    fakesnow_server: Any, raw_tables: dict[str, pa.Table], tmp_path_factory: pytest.TempPathFactory
) -> Capture:
    """What the workload sends to fakesnow."""
    return run_workload(snowflake_settings(fakesnow_server), tmp_path_factory.mktemp("snowflake_workload"), raw_tables)


@pytest.mark.snowflake
def test_sqlfluff_parses_every_statement_sent_to_snowflake(snowflake_capture: Capture) -> None:
    statements = snowflake_capture.statements("snowflake")
    errors = {sql: parse_errors(bind_parameters(sql)) for sql in dict.fromkeys(statements)}  # each text once
    unparsed = [f"{problems}\n    statement: {sql[:300]}" for sql, problems in errors.items() if problems]
    kinds = {sql.split(None, 1)[0].upper() for sql in statements}
    assert {"CREATE", "INSERT", "DELETE", "SELECT", "BEGIN", "COMMIT"} <= kinds, kinds
    assert len(statements) >= MIN_CAPTURED, f"only {len(statements)} statements captured: {snowflake_capture.commands}"
    assert not unparsed, f"sqlfluff cannot parse {len(unparsed)} of {len(errors)} distinct statements:\n" + "\n".join(
        unparsed
    )


# Over sqlfluff's default large_file_skip_byte_limit (20 KB) in one token, which parses fast.
LARGE_SELECT = "SELECT amount, '" + "x" * 21_000 + "' AS padding FROM raw.transactions"
# Each statement Snowflake cannot parse, what sqlfluff says, and the corrected statement it parses.
SNOWFLAKE_CONTROLS = [
    pytest.param(
        "SELECT (amount FROM raw.transactions",
        "Couldn't find closing bracket",
        "SELECT (amount) FROM raw.transactions",
        id="unbalanced-parenthesis",
    ),
    pytest.param(
        "SELEC amount FROM raw.transactions",
        "Found unparsable section: 'SELEC amount FROM raw.transactions'",
        "SELECT amount FROM raw.transactions",
        id="misspelled-keyword",
    ),
    pytest.param(
        "SELECT 'settled FROM raw.transactions",
        "Unable to lex characters",
        "SELECT 'settled' FROM raw.transactions",
        id="unterminated-string",
    ),
    pytest.param(
        "FROM raw.transactions SELECT amount",
        "Found unparsable section: 'FROM raw.transactions SELECT amount'",
        "SELECT amount FROM raw.transactions",
        id="duckdb-from-first",
    ),
    pytest.param(
        "SELECT * FROM raw.transactions USING SAMPLE 10%",
        "Found unparsable section: 'USING SAMPLE 10%'",
        "SELECT * FROM raw.transactions SAMPLE (10)",
        id="duckdb-using-sample",
    ),
    pytest.param(
        "INSERT OR REPLACE INTO raw.users VALUES (1)",
        "Found unparsable section",
        "INSERT INTO raw.users VALUES (1)",
        id="duckdb-insert-or-replace",
    ),
    pytest.param(  # sqlfluff would skip it, and succeed, with its default limit
        LARGE_SELECT + " WHERE (amount > 0",
        "Couldn't find closing bracket",
        LARGE_SELECT + " WHERE (amount > 0)",
        id="over-20-kb",
    ),
]


@pytest.mark.parametrize(("wrong", "message", "right"), SNOWFLAKE_CONTROLS)
def test_sqlfluff_refuses_what_snowflake_cannot_parse(wrong: str, message: str, right: str) -> None:
    assert parse_errors(right) == [], f"the corrected statement must parse: {right[:200]}"
    problems = parse_errors(wrong)
    assert any(message in problem for problem in problems), problems


def test_the_large_control_is_over_sqlfluffs_default_limit() -> None:
    assert len(LARGE_SELECT.encode()) > 20_000


def test_bulk_insert_templates_are_bound_and_nothing_else() -> None:
    template = "INSERT INTO features.spine VALUES (%s, %s, %s)"
    assert bind_parameters(template) == "INSERT INTO features.spine VALUES (NULL, NULL, NULL)"
    assert bind_parameters("SELECT '%s' FROM t") == "SELECT '%s' FROM t"
    assert re.search("%s", bind_parameters("INSERT INTO t VALUES (%s, 1)"))  # not a pure template
