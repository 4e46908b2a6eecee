"""DuckDB, in process: the embedded default target (a file under target/)."""

from __future__ import annotations

import re
import threading
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from featuresql.adapters.base import WarehouseAdapter, redact
from pydantic import BaseModel, ConfigDict, Field
from sqlglot import exp

from featuresql.errors import ConfigError, ExecutionError, TargetBusyError

if TYPE_CHECKING:
    import pyarrow as pa


class DuckDBTarget(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["duckdb"] = "duckdb"
    path: str = "target/featuresql.duckdb"
    schema_: str = Field("main", alias="schema")
    threads: int | None = Field(None, gt=0)
    memory_limit: str | None = None
    settings: dict[str, Any] = {}


class DuckDBAdapter(WarehouseAdapter):
    type_name = "duckdb"
    dialect = "duckdb"
    config_model = DuckDBTarget
    config: DuckDBTarget

    def __init__(self, config: DuckDBTarget, project_root: Path, *, connection: Any = None):
        super().__init__(config, project_root, driver=connection)
        self._owner = connection is None

    @property
    def database_path(self) -> str:
        if self.config.path == ":memory:":
            return ":memory:"
        path = Path(self.config.path)
        return str(path if path.is_absolute() else self.project_root / path)

    def missing(self) -> str | None:
        if self.database_path == ":memory:":
            return "in-memory DuckDB target: nothing built to read"
        if not Path(self.database_path).is_file():
            return f"the DuckDB database {self.database_path} does not exist yet: run `featuresql run`"
        return None

    @property
    def connection(self) -> Any:
        return self.driver

    def _connect(self) -> Any:
        import duckdb

        if self.database_path != ":memory:":
            if Path(self.database_path).is_dir():
                raise ConfigError(
                    f"the DuckDB target's path {self.config.path!r} is a folder: set path in profiles.yml "
                    "to a database file, e.g. target/dev.duckdb"
                )
            Path(self.database_path).parent.mkdir(parents=True, exist_ok=True)
        settings = dict(self.config.settings)
        # Relative paths in hooks and models (read_parquet('data/x.parquet')) are the project's.
        settings.setdefault("file_search_path", str(self.project_root))
        if self.config.threads:
            settings["threads"] = self.config.threads
        if self.config.memory_limit:
            settings["memory_limit"] = self.config.memory_limit
        try:
            connection = duckdb.connect(self.database_path, config=settings)
            connection.execute("SET TimeZone = 'UTC'")  # timestamps are UTC everywhere
            connection.execute("SET enable_progress_bar = false")  # featuresql prints its own progress
            return connection
        except duckdb.Error as exc:
            holder = _LOCK_HOLDER.search(str(exc))
            if holder:
                raise TargetBusyError(
                    f"DuckDB database {self.database_path} is open in another process (PID {holder.group(1)})"
                ) from None
            raise ExecutionError(f"cannot open DuckDB database {self.database_path}: {redact(exc)}") from None

    def for_thread(self) -> DuckDBAdapter:
        # A DuckDB cursor is a separate connection to the same database, safe in its own thread.
        return DuckDBAdapter(self.config, self.project_root, connection=self.connection.cursor())

    def execute(self, statement: exp.Expr | str) -> int | None:
        sql = self.sql(statement)
        connection = self.connection  # opening it has its own errors (a busy file)
        self._sent(sql)
        try:
            cursor = connection.execute(sql)
            result = cursor.fetchall() if cursor is not None else []  # None: a statement of comments only
        except Exception as exc:
            raise ExecutionError(f"DuckDB rejected a statement: {redact(exc)}") from exc
        if result and len(result[0]) == 1 and isinstance(result[0][0], int) and len(result) == 1:
            return int(result[0][0])
        return None

    def fetch_arrow(self, query: exp.Expr | str) -> pa.Table:
        sql = self.sql(query)
        connection = self.connection
        self._sent(sql)
        try:
            table: pa.Table = connection.sql(sql).to_arrow_table()
        except Exception as exc:
            raise ExecutionError(f"DuckDB rejected a query: {redact(exc)}") from exc
        return table

    def fetch_batches(self, query: exp.Expr | str, rows: int = 50_000) -> Generator[pa.RecordBatch, None, None]:
        sql = self.sql(query)
        connection = self.connection
        self._sent(sql)
        try:
            reader = connection.sql(sql).to_arrow_reader(rows)
        except Exception as exc:
            raise ExecutionError(f"DuckDB rejected a query: {redact(exc)}") from exc
        try:
            yield from reader
        finally:
            reader.close()  # until then the connection runs no other statement

    def create_temporary(self, name: str, query: exp.Query) -> exp.Table:
        table = super().create_temporary(name, query)
        return exp.table_(table.name, db="main", catalog="temp")  # where DuckDB keeps temporary tables

    def load_table(self, table: exp.Table, data: pa.Table, *, temporary: bool = False) -> exp.Table:
        if temporary:  # DuckDB keeps temporary tables in its own "temp" catalog
            table = exp.table_(table.name, db="main", catalog="temp")
        view = f"__featuresql_load_{threading.get_ident()}"
        self.connection.register(view, data)
        try:
            properties = exp.Properties(expressions=[exp.TemporaryProperty()]) if temporary else None
            create = exp.Create(
                this=table, kind="TABLE", replace=True, expression=exp.select("*").from_(view), properties=properties
            )
            self.execute(create)
        finally:
            self.connection.unregister(view)
        return table

    def load_parquet(self, table: exp.Table, path: Path, row_column: str) -> exp.Table:
        # read_parquet numbers the rows as they are in the file; no copy through Python.
        table = exp.table_(table.name, db="main", catalog="temp")
        source = f"read_parquet({_string(path)}, file_row_number = true)"
        self.execute(
            f"CREATE OR REPLACE TEMPORARY TABLE {self.sql(table)} AS "
            f"SELECT * EXCLUDE (file_row_number), file_row_number AS {row_column} FROM {source}"
        )
        return table

    def export_parquet(self, query: exp.Expr, path: Path) -> int | None:
        return self.execute(f"COPY ({self.sql(query)}) TO {_string(path)} (FORMAT parquet)")

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.execute("BEGIN TRANSACTION")
        try:
            yield
        except BaseException:
            self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def table_columns(self, table: exp.Table) -> dict[str, str] | None:
        query = (
            exp.select("column_name", "data_type")
            .from_("information_schema.columns")
            .where(exp.column("table_name").eq(exp.Literal.string(table.name)))
            .where(exp.column("table_schema").eq(exp.Literal.string(table.db or self.schema)))
            .order_by("ordinal_position")
        )
        connection = self.connection
        sql = self.sql(query)
        self._sent(sql)
        try:  # plain rows: no Arrow (and no pyarrow import) for a lookup
            rows = connection.execute(sql).fetchall()
        except Exception as exc:
            raise ExecutionError(f"DuckDB rejected a query: {redact(exc)}") from exc
        return {name.lower(): kind for name, kind in rows} or None

    def describe(self) -> str:
        return f"duckdb path={self.database_path} schema={self.schema}"

    def close(self) -> None:
        if self._driver is not None and self._owner:
            self._driver.close()
        self._driver = None


def _string(path: Path) -> str:
    return exp.Literal.string(str(path)).sql("duckdb")


_LOCK_HOLDER = re.compile(r"Conflicting lock is held in .*\(PID (\d+)\)")
