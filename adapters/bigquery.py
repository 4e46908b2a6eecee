"""BigQuery, through google-cloud-bigquery (``pip install 'featuresql[bigquery]'``).

Choices worth knowing:

- Models live in the target's dataset (``dataset:``, or ``schema:`` as in dbt);
  unqualified names are resolved in the target's project.
- Event times are ``TIMESTAMP`` (BigQuery's instant type): ``DATETIME`` does not
  compare with it. Local rows with naive timestamps are loaded as UTC instants.
- A range replacement is a multi-statement transaction in a BigQuery session:
  ``BEGIN TRANSACTION`` starts a session, the ``DELETE``, ``INSERT`` and state
  row run in it, and ``COMMIT TRANSACTION`` (or ``ROLLBACK``) ends it. This keeps
  one statement per job, so each reports its own row count and error, where a
  single script would hide which statement failed. BigQuery refuses DDL in a
  transaction; the core never puts one there (see ``featuresql.execution``).
- Local rows (a spine file) are loaded with a parquet load job: one job, types
  kept exactly. "Temporary" tables are ordinary tables that expire after a day
  (BigQuery's own temporary tables exist only inside a session or a script),
  dropped by featuresql as soon as the extract is done.
- Results come through the REST API (``create_bqstorage_client=False``) unless
  ``storage_api: true`` (needs google-cloud-bigquery-storage; faster for large
  extracts on the real service).
- Driver errors become one-line ``ExecutionError``s without credentials or quoted
  row values.
"""

from __future__ import annotations

import contextlib
import io
import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from featuresql.adapters.base import WarehouseAdapter, import_driver, redact
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, model_validator
from sqlglot import exp

from featuresql.errors import ConfigError, ExecutionError

if TYPE_CHECKING:
    import pyarrow as pa

TEMPORARY_TABLE_HOURS = 24


class BigQueryTarget(BaseModel):
    """A profiles.yml target of ``type: bigquery`` (the options dbt-bigquery users know)."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    type: Literal["bigquery"] = "bigquery"
    project: str
    schema_: str = Field(validation_alias=AliasChoices("dataset", "schema", "schema_"))
    location: str | None = None
    method: Literal["oauth", "service-account", "service-account-json", "anonymous"] = "oauth"
    keyfile: str | None = None  # method: service-account (a JSON key file)
    keyfile_json: SecretStr | None = None  # method: service-account-json (the key itself, from env_var)
    api_endpoint: str | None = None  # a regional or private endpoint, or a local emulator
    storage_api: bool = False  # read results with the BigQuery Storage API
    job_timeout_seconds: float | None = Field(None, gt=0)
    maximum_bytes_billed: int | None = Field(None, gt=0)
    labels: dict[str, str] = {}

    @model_validator(mode="after")
    def _credentials_given(self) -> BigQueryTarget:
        if self.method == "service-account" and not self.keyfile:
            raise ValueError("method service-account needs keyfile: the path of a service-account JSON key")
        if self.method == "service-account-json" and self.keyfile_json is None:
            raise ValueError("method service-account-json needs keyfile_json: the key, e.g. from env_var()")
        return self

    def secrets(self) -> list[str]:
        return [self.keyfile_json.get_secret_value()] if self.keyfile_json else []


class BigQueryAdapter(WarehouseAdapter):
    type_name = "bigquery"
    dialect = "bigquery"
    config_model = BigQueryTarget
    config: BigQueryTarget

    def __init__(self, config: BigQueryTarget, project_root: Path):
        super().__init__(config, project_root)
        self._session: str | None = None  # the open transaction's session

    @property
    def client(self) -> Any:
        return self.driver

    def _connect(self) -> Any:
        bigquery = import_driver("google.cloud.bigquery", "bigquery")
        config = self.config
        options = {"api_endpoint": config.api_endpoint} if config.api_endpoint else None
        try:
            return bigquery.Client(
                project=config.project, credentials=self._credentials(), location=config.location,
                client_options=options,
            )  # fmt: skip
        except Exception as exc:
            raise ExecutionError(f"cannot open BigQuery project {config.project!r}: {self._redact(exc)}") from None

    def _credentials(self) -> Any:
        config = self.config
        if config.method == "anonymous":
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials()  # type: ignore[no-untyped-call]
        if config.method == "oauth":
            return None  # application default credentials, found by the client
        import json

        from google.oauth2 import service_account

        scopes = ["https://www.googleapis.com/auth/bigquery"]
        if config.method == "service-account":
            path = Path(config.keyfile or "").expanduser()
            if not path.is_file():
                raise ConfigError(f"BigQuery keyfile {path} does not exist: check the path in profiles.yml")
            return service_account.Credentials.from_service_account_file(str(path), scopes=scopes)  # type: ignore[no-untyped-call]
        assert config.keyfile_json is not None
        try:
            info = json.loads(config.keyfile_json.get_secret_value())
        except ValueError:
            raise ConfigError("BigQuery keyfile_json is not valid JSON: give the service-account key itself") from None
        return service_account.Credentials.from_service_account_info(info, scopes=scopes)  # type: ignore[no-untyped-call]

    def _redact(self, exc: BaseException) -> str:
        return redact(exc, self.config.secrets())

    def for_thread(self) -> BigQueryAdapter:
        # A transaction belongs to a session of this adapter: each thread gets its own.
        return BigQueryAdapter(self.config, self.project_root)

    def _job_config(self, **settings: Any) -> Any:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(default_dataset=f"{self.config.project}.{self.schema}", **settings)
        if self.config.maximum_bytes_billed is not None:
            config.maximum_bytes_billed = self.config.maximum_bytes_billed
        if self.config.labels:
            config.labels = dict(self.config.labels)
        if self._session is not None:
            config.connection_properties = [bigquery.ConnectionProperty("session_id", self._session)]
        return config

    def _run(self, sql: str, **settings: Any) -> Any:
        """Run one statement as a query job and wait for it."""
        self._sent(sql)
        try:
            job = self.client.query(sql, job_config=self._job_config(**settings))
            job.result(timeout=self.config.job_timeout_seconds)
        except Exception as exc:
            raise ExecutionError(f"BigQuery rejected a statement: {self._redact(exc)}") from None
        return job

    def execute(self, statement: exp.Expr | str) -> int | None:
        sql = self.sql(statement)
        job = self._run(sql)
        rows = job.num_dml_affected_rows
        return int(rows) if rows is not None else None

    def fetch_arrow(self, query: exp.Expr | str) -> pa.Table:
        sql = self.sql(query)
        job = self._run(sql)
        try:
            table: pa.Table = job.result().to_arrow(create_bqstorage_client=self.config.storage_api)
        except Exception as exc:
            raise ExecutionError(f"BigQuery could not return a result: {self._redact(exc)}") from None
        return table

    def fetch_batches(self, query: exp.Expr | str, rows: int = 50_000) -> Generator[pa.RecordBatch, None, None]:
        job = self._run(self.sql(query))
        try:
            yield from job.result(page_size=rows).to_arrow_iterable()
        except Exception as exc:
            raise ExecutionError(f"BigQuery could not return a result: {self._redact(exc)}") from None

    def create_temporary(self, name: str, query: exp.Query) -> exp.Table:
        # Temporary tables need a session or a script; an expiring table works everywhere.
        table = exp.table_(f"{name}_{uuid.uuid4().hex[:8]}", db=self.schema)
        expires = exp.TimestampAdd(this=exp.CurrentTimestamp(), expression=exp.Literal.number(TEMPORARY_TABLE_HOURS),
                                   unit=exp.var("HOUR"))  # fmt: skip
        options = exp.Properties(expressions=[exp.Property(this=exp.var("expiration_timestamp"), value=expires)])
        self.execute(exp.Create(this=table, kind="TABLE", expression=query, properties=options))
        return table

    def load_table(self, table: exp.Table, data: pa.Table, *, temporary: bool = False) -> exp.Table:
        import pyarrow.parquet as pq
        from featuresql.adapters.arrow_sql import instants
        from google.cloud import bigquery

        if temporary:  # a session-less temporary table: unique, expiring, dropped after use
            table = exp.table_(f"{table.name}_{uuid.uuid4().hex[:8]}", db=self.schema)
        elif not table.db:
            table = exp.table_(table.name, db=self.schema)
        buffer = io.BytesIO()
        pq.write_table(instants(data), buffer)
        buffer.seek(0)
        job_config = bigquery.LoadJobConfig(
            source_format=bigquery.SourceFormat.PARQUET,
            write_disposition=bigquery.WriteDisposition.WRITE_TRUNCATE,
        )
        reference = f"{self.config.project}.{table.db}.{table.name}"
        self._sent("")  # a load job: one round trip, rows as parquet
        try:
            self.client.load_table_from_file(buffer, reference, job_config=job_config).result(
                timeout=self.config.job_timeout_seconds
            )
            if temporary:
                created = self.client.get_table(reference)
                created.expires = datetime.now(UTC) + timedelta(hours=TEMPORARY_TABLE_HOURS)
                self.client.update_table(created, ["expires"])
        except Exception as exc:
            raise ExecutionError(f"BigQuery could not load the rows of {table.name}: {self._redact(exc)}") from None
        return table

    @contextmanager
    def transaction(self) -> Iterator[None]:
        job = self._run("BEGIN TRANSACTION", create_session=True)
        self._session = job.session_info.session_id
        try:
            yield
            self._run("COMMIT TRANSACTION")
        except BaseException:
            with contextlib.suppress(ExecutionError):  # the session's end rolls back as well
                self._run("ROLLBACK TRANSACTION")
            raise
        finally:
            with contextlib.suppress(ExecutionError):
                self._run("CALL BQ.ABORT_SESSION()")
            self._session = None

    def table_columns(self, table: exp.Table) -> dict[str, str] | None:
        dataset = table.db or self.schema
        columns = exp.table_("COLUMNS", db="INFORMATION_SCHEMA", catalog=dataset)
        query = (
            exp.select("column_name", "data_type")
            .from_(columns)
            .where(exp.column("table_name").eq(exp.Literal.string(table.name)))
            .order_by("ordinal_position")
        )
        rows = self.fetch_arrow(query).to_pylist()
        return {row["column_name"].lower(): row["data_type"] for row in rows} or None

    def ensure_schema(self, name: str) -> None:
        from google.cloud import bigquery

        dataset = bigquery.Dataset(f"{self.config.project}.{name}")
        dataset.location = self.config.location
        try:
            self.client.create_dataset(dataset, exists_ok=True)
        except Exception as exc:
            raise ExecutionError(f"BigQuery could not create dataset {name}: {self._redact(exc)}") from None

    def describe(self) -> str:
        return f"bigquery project={self.config.project} dataset={self.schema}"

    def close(self) -> None:
        client, self._driver = self._driver, None
        if client is not None:
            client.close()
