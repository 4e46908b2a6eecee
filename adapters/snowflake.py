"""Snowflake, through snowflake-connector-python (``pip install 'featuresql[snowflake]'``).

Choices worth knowing:

- Identifiers featuresql writes are unquoted, so Snowflake folds them to upper
  case as it does for dbt models; result columns in upper case come back in
  lower case, so a model's columns have the same names on every engine.
- The session runs in UTC (``TIMEZONE``) and event times are ``TIMESTAMP_NTZ``.
- A range replacement is ``BEGIN`` / ``DELETE`` / ``INSERT`` / ``COMMIT`` on the
  adapter's own session. DDL commits implicitly in Snowflake, so the core never
  puts a ``CREATE`` inside a transaction (see ``featuresql.run.execution``).
- Local rows (a spine file) are inserted with the driver's bulk ``executemany``
  in chunks: one multi-row ``INSERT`` per chunk (at most 10,000 rows and about
  500 KB of SQL: Snowflake caps a statement at 1 MB), escaped by the driver.
- Driver errors become one-line ``ExecutionError``s without credentials or
  quoted row values.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Literal

from featuresql.adapters.base import WarehouseAdapter, import_driver, redact
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator
from sqlglot import exp

from featuresql.errors import ExecutionError

if TYPE_CHECKING:
    import pyarrow as pa

INSERT_ROWS = 10_000  # at most this many rows per multi-row INSERT when loading local data
INSERT_BYTES = 500_000  # and about this much SQL: Snowflake caps a statement at 1 MB


class SnowflakeTarget(BaseModel):
    """A profiles.yml target of ``type: snowflake`` (the options dbt-snowflake users know)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["snowflake"] = "snowflake"
    account: str
    user: str
    password: SecretStr | None = None
    private_key_path: str | None = None  # key-pair authentication (a PEM file)
    private_key_passphrase: SecretStr | None = None
    authenticator: str | None = None  # externalbrowser, oauth, snowflake_jwt, username_password_mfa, an Okta URL
    token: SecretStr | None = None  # with authenticator: oauth
    role: str | None = None
    warehouse: str | None = None
    database: str
    schema_: str = Field("public", alias="schema")
    host: str | None = None  # private link, or a local server in tests
    port: int | None = Field(None, gt=0)
    protocol: Literal["https", "http"] | None = None
    login_timeout: int | None = Field(None, gt=0)
    query_tag: str | None = None
    connect_args: dict[str, Any] = {}  # passed to snowflake.connector.connect as they are

    @model_validator(mode="after")
    def _one_way_to_log_in(self) -> SnowflakeTarget:
        if self.password is None and self.private_key_path is None and self.token is None and not self.authenticator:
            raise ValueError(
                "give one way to log in: password, private_key_path (key pair), or authenticator "
                "(externalbrowser, or oauth with token)"
            )
        return self

    def secrets(self) -> list[str]:
        values = (self.password, self.private_key_passphrase, self.token)
        return [v.get_secret_value() for v in values if v is not None and v.get_secret_value()]


class SnowflakeAdapter(WarehouseAdapter):
    type_name = "snowflake"
    dialect = "snowflake"
    config_model = SnowflakeTarget
    config: SnowflakeTarget

    @property
    def connection(self) -> Any:
        return self.driver

    def _connect(self) -> Any:
        connector = import_driver("snowflake.connector", "snowflake")
        config = self.config
        arguments: dict[str, Any] = {
            "account": config.account,
            "user": config.user,
            "database": config.database,
            "schema": config.schema_,
            "role": config.role,
            "warehouse": config.warehouse,
            "host": config.host,
            "port": config.port,
            "protocol": config.protocol,
            "authenticator": config.authenticator,
            "login_timeout": config.login_timeout,
            "private_key_file": self._project_path(config.private_key_path),
            "application": "featuresql",
            "session_parameters": {"TIMEZONE": "UTC", **({"QUERY_TAG": config.query_tag} if config.query_tag else {})},
        }
        for name, secret in (
            ("password", config.password),
            ("private_key_file_pwd", config.private_key_passphrase),
            ("token", config.token),
        ):
            if secret is not None:
                arguments[name] = secret.get_secret_value()
        arguments = {k: v for k, v in arguments.items() if v is not None} | dict(config.connect_args)
        try:
            return connector.connect(**arguments)
        except Exception as exc:
            account = config.account
            raise ExecutionError(f"cannot connect to Snowflake account {account!r}: {self._redact(exc)}") from None

    def _redact(self, exc: BaseException) -> str:
        return redact(exc, self.config.secrets())

    def for_thread(self) -> SnowflakeAdapter:
        # A transaction belongs to a session: each thread gets its own connection.
        return SnowflakeAdapter(self.config, self.project_root)

    def _cursor(self, sql: str, parameters: Any = None) -> Any:
        cursor = self.connection.cursor()
        self._sent(sql)
        try:
            cursor.execute(sql, parameters)
        except Exception as exc:
            cursor.close()
            raise ExecutionError(f"Snowflake rejected a statement: {self._redact(exc)}") from None
        return cursor

    def execute(self, statement: exp.Expr | str) -> int | None:
        sql = self.sql(statement)
        cursor = self._cursor(sql)
        try:
            dml = isinstance(statement, exp.Insert | exp.Delete | exp.Update | exp.Merge)
            return int(cursor.rowcount) if dml and cursor.rowcount is not None and cursor.rowcount >= 0 else None
        finally:
            cursor.close()

    def fetch_arrow(self, query: exp.Expr | str) -> pa.Table:
        import pyarrow as pa

        sql = self.sql(query)
        cursor = self._cursor(sql)
        try:
            table = cursor.fetch_arrow_all()
            if table is None:  # no rows: the connector returns None, so build the empty table
                table = pa.table({d.name: pa.array([], pa.null()) for d in cursor.description})
        except Exception as exc:
            raise ExecutionError(f"Snowflake could not return a result: {self._redact(exc)}") from None
        finally:
            cursor.close()
        return _microseconds(table.rename_columns([_folded(name) for name in table.column_names]))

    def fetch_batches(self, query: exp.Expr | str, rows: int = 50_000) -> Generator[pa.RecordBatch, None, None]:
        # The connector streams the result chunks Snowflake produced (their size is Snowflake's choice).
        cursor = self._cursor(self.sql(query))
        try:
            for chunk in cursor.fetch_arrow_batches():
                table = _microseconds(chunk.rename_columns([_folded(name) for name in chunk.column_names]))
                yield from table.to_batches(max_chunksize=rows)
        except Exception as exc:
            raise ExecutionError(f"Snowflake could not return a result: {self._redact(exc)}") from None
        finally:
            cursor.close()

    def load_table(self, table: exp.Table, data: pa.Table, *, temporary: bool = False) -> exp.Table:
        from featuresql.adapters.arrow_sql import column_definitions, python_rows

        if not table.db and not temporary:
            table = exp.table_(table.name, db=self.schema)
        properties = exp.Properties(expressions=[exp.TemporaryProperty()]) if temporary else None
        schema = exp.Schema(this=table.copy(), expressions=column_definitions(data.schema, self.dialect))
        self.execute(exp.Create(this=schema, kind="TABLE", replace=True, properties=properties))
        if data.num_rows:
            placeholders = ", ".join(["%s"] * data.num_columns)
            insert = f"INSERT INTO {self.sql(table)} VALUES ({placeholders})"
            cursor = self.connection.cursor()
            try:
                chunk = max(1, min(INSERT_ROWS, INSERT_BYTES // (24 * data.num_columns)))
                for rows in python_rows(data, chunk):
                    self._sent(insert)  # the driver sends one multi-row INSERT per chunk
                    cursor.executemany(insert, rows)
            except Exception as exc:
                raise ExecutionError(f"Snowflake rejected the rows of {table.name}: {self._redact(exc)}") from None
            finally:
                cursor.close()
        return table

    @contextmanager
    def transaction(self) -> Iterator[None]:
        self.execute("BEGIN")
        try:
            yield
        except BaseException:
            with contextlib.suppress(ExecutionError):  # the first error is the one to report
                self.execute("ROLLBACK")
            raise
        self.execute("COMMIT")

    def table_columns(self, table: exp.Table) -> dict[str, str] | None:
        return {_folded(name): kind for name, kind in self._columns(table, "data_type")} or None

    def exact_column_types(self, table: exp.Table) -> dict[str, str] | None:
        """INFORMATION_SCHEMA's ``data_type`` is a bare ``NUMBER``: its precision and scale are columns of their own."""
        rows = self._columns(table, "data_type", "numeric_precision", "numeric_scale")
        return {
            _folded(name): f"NUMBER({precision}, {scale})" if kind == "NUMBER" and precision is not None else kind
            for name, kind, precision, scale in rows
        } or None

    def _columns(self, table: exp.Table, *fields: str) -> list[tuple[Any, ...]]:
        """The table's rows of INFORMATION_SCHEMA.COLUMNS: its column names, then ``fields``, in order."""
        columns = exp.table_("columns", db="information_schema", catalog=table.catalog or self.config.database)
        query = (
            exp.select("column_name", *fields)
            .from_(columns)
            .where(exp.column("table_schema").eq(exp.Literal.string(_stored(table.db or self.schema))))
            .where(exp.column("table_name").eq(exp.Literal.string(_stored(table.name))))
            .order_by("ordinal_position")
        )
        cursor = self._cursor(self.sql(query))
        try:
            return list(cursor.fetchall())
        finally:
            cursor.close()

    def describe(self) -> str:
        config = self.config
        return f"snowflake account={config.account} database={config.database} schema={self.schema}"

    def close(self) -> None:
        connection, self._driver = self._driver, None
        if connection is not None:
            with contextlib.suppress(Exception):  # a failed close must not hide the outcome of a run
                connection.close()


def _folded(name: str) -> str:
    """A name Snowflake folded to upper case (an unquoted identifier) back in lower case."""
    return name.lower() if name == name.upper() else name


def _stored(name: str) -> str:
    """How Snowflake stores an identifier featuresql wrote unquoted."""
    return name.upper() if name == name.lower() else name


def _microseconds(table: pa.Table) -> pa.Table:
    """Timestamps in microseconds, as the other engines return them (Snowflake sends nanoseconds)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    for index, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) and field.type.unit == "ns":
            unit = pa.timestamp("us", tz=field.type.tz)
            column = pc.floor_temporal(table.column(index), unit="microsecond").cast(unit)
            table = table.set_column(index, field.with_type(unit), column)
    return table
