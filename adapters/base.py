"""The one interface every warehouse implements.

Deliberately small (compare httpx's transport boundary): connect, execute an
expression, fetch Arrow, and load an Arrow table.
Everything else (planning, SQL building) is the core's job; an adapter only
knows how to talk to its engine.
"""

from __future__ import annotations

import importlib
import re
import threading
from abc import ABC, abstractmethod
from collections.abc import Generator, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel
from sqlglot import exp

from featuresql.errors import ConfigError

if TYPE_CHECKING:
    import pyarrow as pa


class WarehouseAdapter(ABC):
    """A connection to one warehouse target."""

    type_name: ClassVar[str]
    dialect: ClassVar[str]
    config_model: ClassVar[type[BaseModel]]

    def __init__(self, config: Any, project_root: Path, *, driver: Any = None):
        self.config = config
        self.project_root = project_root
        self.sent_statements = 0  # round trips to the engine, and the bytes of SQL they carried
        self.sent_bytes = 0
        self._driver = driver  # the driver's connection or client, opened on first use
        self._driver_lock = threading.Lock()

    @property
    def driver(self) -> Any:
        """The driver's connection (or client): opened by ``_connect`` on first use, once across threads."""
        with self._driver_lock:
            if self._driver is None:
                self._driver = self._connect()
            return self._driver

    def _connect(self) -> Any:
        """Open the driver's connection (adapters that use ``driver`` implement it)."""
        raise NotImplementedError

    def _sent(self, sql: str) -> None:
        """Count one statement sent (adapters call it where they hand SQL to the driver)."""
        self.sent_statements += 1
        self.sent_bytes += len(sql.encode())

    @property
    def schema(self) -> str:
        """The schema models are built in."""
        return str(self.config.schema_)

    def _project_path(self, path: str | None) -> str | None:
        """A path from profiles.yml: ``~`` expanded, a relative path taken from the project folder."""
        if path is None:
            return None
        expanded = Path(path).expanduser()
        return str(expanded if expanded.is_absolute() else self.project_root / expanded)

    def sql(self, expression: exp.Expr | str) -> str:
        """Render an expression in this warehouse's dialect (SQL text is passed through)."""
        return expression if isinstance(expression, str) else expression.sql(dialect=self.dialect)

    @abstractmethod
    def execute(self, statement: exp.Expr | str) -> int | None:
        """Run one statement; return the affected row count when the engine reports it."""

    @abstractmethod
    def fetch_arrow(self, query: exp.Expr | str) -> pa.Table:
        """Run a query and return its result as an Arrow table."""

    def fetch_batches(self, query: exp.Expr | str, rows: int = 50_000) -> Generator[pa.RecordBatch, None, None]:
        """A query's result as Arrow record batches of about ``rows`` rows, streamed where the engine can.

        Close the generator when you stop reading early: the engine's result (a DuckDB
        connection's open result, a Snowflake cursor) is released then.
        """
        yield from self.fetch_arrow(query).to_batches(max_chunksize=rows)

    def create_temporary(self, name: str, query: exp.Query) -> exp.Table:
        """A table of ``query``'s rows for this connection's own use: it goes with the session (or expires)."""
        table = exp.to_table(name)
        properties = exp.Properties(expressions=[exp.TemporaryProperty()])
        self.execute(exp.Create(this=table, kind="TABLE", replace=True, expression=query, properties=properties))
        return table

    @abstractmethod
    def load_table(self, table: exp.Table, data: pa.Table, *, temporary: bool = False) -> exp.Table:
        """Create or replace ``table`` with the rows of ``data``; return the table as created.

        A temporary table lives as long as the connection (the engine may place it in
        its own schema: use the returned name).
        """

    def load_parquet(self, table: exp.Table, path: Path, row_column: str) -> exp.Table | None:
        """Load a local parquet file into a temporary table, its row order in ``row_column``.

        Optional: None means this engine cannot read local files, and the caller
        loads the file through Arrow and ``load_table`` instead.
        """
        return None

    def export_parquet(self, query: exp.Expr, path: Path) -> int | None:
        """Write a query's result to a local parquet file and return its row count.

        Optional: None means unsupported, and the caller fetches Arrow and writes it.
        """
        return None

    @abstractmethod
    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Statements inside commit together or not at all."""

    @abstractmethod
    def table_columns(self, table: exp.Table) -> dict[str, str] | None:
        """Column names (lower case) and types of a table, or None if it does not exist."""

    def exact_column_types(self, table: exp.Table) -> dict[str, str] | None:
        """Like ``table_columns``, each type with its parameters (``NUMBER(38,2)``, not ``NUMBER``): what
        on-demand programs are typed with, so the reader rounds a stored decimal to its real scale."""
        return self.table_columns(table)

    @abstractmethod
    def close(self) -> None:
        """Release the connection."""

    def missing(self) -> str | None:
        """Why there is nothing to read yet, known without connecting (None: connect and see).

        ``featuresql docs`` asks, so that reading a target never creates it (an embedded
        engine's file would be created by connecting).
        """
        return None

    def for_thread(self) -> WarehouseAdapter:
        """An adapter usable from another thread (engines with thread-safe connections return self)."""
        return self

    def describe(self) -> str:
        """A one-line description of the target without secrets, for `featuresql debug`."""
        return f"{self.type_name} schema={self.schema}"

    def ensure_schema(self, name: str) -> None:
        self.execute(exp.Create(this=exp.Table(this=exp.to_identifier(name)), kind="SCHEMA", exists=True))


def import_driver(module: str, extra: str) -> Any:
    """Import a warehouse driver, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ConfigError(
            f"target type {extra} needs its driver ({module}): pip install 'featuresql[{extra}]'"
        ) from None


_QUOTED = re.compile(r"'(?:[^']|'')*'")


def redact(exc: BaseException, secrets: Sequence[str] = ()) -> str:
    """The first line of a driver's message, without secrets or quoted row values."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else type(exc).__name__
    for secret in secrets:
        first = first.replace(secret, "***")
    return _QUOTED.sub("'...'", first)
