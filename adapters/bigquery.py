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
  transaction; the core never puts one there (see ``featuresql.run.execution``).
- Local rows (a spine file) are loaded with a parquet load job: one job, types
  kept exactly. "Temporary" tables are ordinary tables that expire after a day
  (BigQuery's own temporary tables exist only inside a session or a script),
  dropped by featuresql as soon as the extract is done.
- Results come through the REST API (``create_bqstorage_client=False``) unless
  ``storage_api: true`` (needs google-cloud-bigquery-storage; faster for large
  extracts on the real service).
- Driver errors become one-line ``ExecutionError``s without credentials or quoted
  row values. A key that cannot be used is a ``ConfigError`` naming where it came
  from (``keyfile``, ``keyfile_json``, application default credentials), never its
  contents.

Waiting (google-cloud-bigquery's defaults retry an unanswered request for ten
minutes, and restart a query job for forty, which leaves an unattended run hanging
when BigQuery or the network is gone):

- ``job_retry_deadline_seconds`` (default 120) bounds each request: the HTTP
  timeout of one request, and how long a request that fails for a transient reason
  (refused connection, timeout, 5xx, rate limit) is retried, the token request of
  a service-account key included. Past it the statement fails with one line saying
  BigQuery did not answer; for as long again the adapter's later calls (rollback,
  run log, lock release) fail at once instead of waiting once more.
- It does not bound a job's run time: a job is awaited in rounds of one deadline
  (``QueryJob.result(timeout=)`` is both each poll's HTTP timeout and a limit on the
  whole wait), so every poll is bounded while a legitimate query may run for hours.
  ``job_timeout_seconds`` (default: none) limits a job's run time; a job past it is
  cancelled.
- With ``storage_api: true`` the BigQuery Storage client's own gRPC retry settings
  apply to reading results (only the REST reads are bounded here).
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import math
import re
import time
import uuid
from collections.abc import Generator, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from featuresql.adapters.base import WarehouseAdapter, import_driver, redact
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, SecretStr, model_validator
from sqlglot import exp

from featuresql.errors import ConfigError, ExecutionError, FeaturesqlError

if TYPE_CHECKING:
    import pyarrow as pa

TEMPORARY_TABLE_HOURS = 24
SCOPES = ("https://www.googleapis.com/auth/bigquery",)
PUBLIC_ENDPOINT = "https://bigquery.googleapis.com"


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
    job_timeout_seconds: float | None = Field(None, gt=0)  # how long one job may run (none: as long as it takes)
    job_retry_deadline_seconds: float = Field(120, gt=0)  # how long one request is awaited and retried
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
        if self.keyfile_json is None:
            return []
        text = self.keyfile_json.get_secret_value()
        with contextlib.suppress(ValueError, AttributeError):  # and the key's own secrets, as a message may quote them
            key = json.loads(text)
            pem = str(key.get("private_key") or "")
            lines = [line for line in pem.splitlines() if line.strip() and not line.startswith("-----")]
            return [text, *lines, *([str(key["private_key_id"])] if key.get("private_key_id") else [])]
        return [text]


class BigQueryAdapter(WarehouseAdapter):
    type_name = "bigquery"
    dialect = "bigquery"
    config_model = BigQueryTarget
    config: BigQueryTarget

    def __init__(self, config: BigQueryTarget, project_root: Path):
        super().__init__(config, project_root)
        self._session: str | None = None  # the open transaction's session
        self._deadline = config.job_retry_deadline_seconds
        self._retry: Any = None  # google.api_core Retry objects bounded by the deadline, made by _connect
        self._job_retry: Any = None
        self._silent_until = 0.0  # monotonic time until which BigQuery is taken as gone (see _reporting)
        self._silence = ""

    @property
    def client(self) -> Any:
        return self.driver

    # -- connecting ------------------------------------------------------------------------------

    def _connect(self) -> Any:
        bigquery = import_driver("google.cloud.bigquery", "bigquery")
        from google.cloud.bigquery.retry import DEFAULT_JOB_RETRY

        self._retry = bigquery.DEFAULT_RETRY.with_deadline(self._deadline)
        self._job_retry = DEFAULT_JOB_RETRY.with_deadline(self._deadline)
        config = self.config
        options = {"api_endpoint": config.api_endpoint} if config.api_endpoint else None
        try:
            return bigquery.Client(
                project=config.project,
                credentials=self._credentials(),
                location=config.location,
                client_options=options,
            )
        except FeaturesqlError:
            raise
        except Exception as exc:
            raise ExecutionError(f"cannot open BigQuery project {config.project}: {self._redact(exc)}") from None

    def _credentials(self) -> Any:
        """The target's credentials, with a first access token already fetched (a bounded wait)."""
        config = self.config
        if config.method == "anonymous":
            from google.auth.credentials import AnonymousCredentials

            return AnonymousCredentials()  # type: ignore[no-untyped-call]
        if config.method == "oauth":
            import google.auth
            from google.auth.exceptions import DefaultCredentialsError

            try:
                credentials, _ = google.auth.default(scopes=SCOPES)
            except DefaultCredentialsError:
                raise ConfigError(
                    "BigQuery method oauth found no application default credentials: run `gcloud auth "
                    "application-default login` (or set GOOGLE_APPLICATION_CREDENTIALS), or use method "
                    "service-account with a keyfile"
                ) from None
            return self._refreshed(credentials, "the application default credentials", None)
        source, info = self._service_account_info()
        credentials = _service_account_credentials(info, source)
        return self._refreshed(credentials, source, info.get("token_uri"))

    def _service_account_info(self) -> tuple[str, dict[str, Any]]:
        """Where the key comes from (for messages) and its parsed JSON."""
        config = self.config
        if config.method == "service-account":
            path = Path(self._project_path(config.keyfile) or "")
            source = f"keyfile {path}"
            if not path.is_file():
                raise ConfigError(f"BigQuery {source} does not exist: check the path in profiles.yml")
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ConfigError(f"BigQuery {source} cannot be read ({type(exc).__name__}): check the file") from None
        else:
            assert config.keyfile_json is not None
            source, text = "keyfile_json", config.keyfile_json.get_secret_value()
        try:
            info = json.loads(text)
        except ValueError:
            info = None
        if not isinstance(info, dict):
            raise ConfigError(
                f"BigQuery {source} is not a JSON object: give the service-account key itself (the JSON file "
                "created under IAM > Service accounts > Keys)"
            )
        return source, info

    def _refreshed(self, credentials: Any, source: str, token_uri: str | None) -> Any:
        """Fetch the first access token now: a refused key or an unreachable token endpoint is said as such."""
        import requests
        from google.auth.exceptions import RefreshError
        from google.auth.transport.requests import Request

        with requests.Session() as session:
            request = functools.partial(Request(session), timeout=self._deadline)
            try:
                self._retry(credentials.refresh)(request)  # retries a token endpoint that does not answer
            except RefreshError as exc:
                if not getattr(exc, "retryable", False):  # its first argument is Google's reason, in words
                    reason = redact(ValueError(exc.args[0] if exc.args else ""), self.config.secrets())
                    raise ConfigError(
                        f"Google refused the BigQuery credentials of {source} ({reason}): the key may be "
                        "disabled or deleted, or the clock off; create a new key for the service account"
                    ) from None
                raise self._unreachable_token_endpoint(source, token_uri, exc) from None
            except Exception as exc:
                if not _unanswered(exc):
                    raise
                raise self._unreachable_token_endpoint(source, token_uri, exc) from None
        return credentials

    def _unreachable_token_endpoint(self, source: str, token_uri: str | None, exc: BaseException) -> ExecutionError:
        endpoint = f"Google's token endpoint {token_uri}" if token_uri else "Google's token endpoint"
        return ExecutionError(
            f"cannot sign in to BigQuery with {source}: {endpoint} did not answer "
            f"({_reason(exc, self.config.secrets())}; retried for up to {self._deadline:g} s): check the network "
            "and any proxy (HTTPS_PROXY), or the key's token_uri"
        )

    def _redact(self, exc: BaseException) -> str:
        return redact(exc, self.config.secrets())

    def for_thread(self) -> BigQueryAdapter:
        # A transaction belongs to a session of this adapter: each thread gets its own.
        return BigQueryAdapter(self.config, self.project_root)

    # -- errors and waiting ----------------------------------------------------------------------

    @contextmanager
    def _reporting(self, failure: str) -> Iterator[None]:
        """Turn a driver error into one line: ``BigQuery <failure>: <why>``, or BigQuery did not answer.

        Once BigQuery has not answered for a whole deadline, this adapter's calls fail at
        once for as long again: the clean-up after a failed statement (rollback, run
        log, lock release) does not wait for it once more each.
        """
        if time.monotonic() < self._silent_until:
            raise ExecutionError(self._silence)
        try:
            yield
        except FeaturesqlError:
            raise
        except Exception as exc:
            limit = self.config.job_timeout_seconds
            if isinstance(exc, TimeoutError) and exc.__cause__ is None and limit is not None:
                raise ExecutionError(
                    f"BigQuery job ran longer than job_timeout_seconds ({limit:g} s), so featuresql cancelled it: "
                    "raise job_timeout_seconds in profiles.yml, or make the query cheaper"
                ) from None
            if not _unanswered(exc):
                raise ExecutionError(f"BigQuery {failure}: {self._redact(exc)}") from None
            endpoint = self.config.api_endpoint or PUBLIC_ENDPOINT
            self._silence = (
                f"BigQuery at {endpoint} (project {self.config.project}) did not answer "
                f"({_reason(exc, self.config.secrets())}; retried for up to {self._deadline:g} s): check that "
                "it is up and reachable, or raise job_retry_deadline_seconds in profiles.yml to wait longer"
            )
            self._silent_until = time.monotonic() + self._deadline
            raise ExecutionError(self._silence) from None

    def _wait(self, job: Any, page_size: int | None = None) -> Any:
        """Wait for a query job and return its rows: each poll bounded, the job itself as long as it runs.

        ``QueryJob.result(timeout=)`` is at once the HTTP timeout of each poll and a
        limit on the whole wait, so it is called in rounds of one deadline until the job
        is done (or has run for ``job_timeout_seconds``, when it is cancelled).
        """
        limit = self.config.job_timeout_seconds
        ends = None if limit is None else time.monotonic() + limit
        step = self._deadline if limit is None else min(self._deadline, limit)
        while True:
            try:
                return job.result(page_size=page_size, retry=self._retry, job_retry=self._job_retry, timeout=step)
            except TimeoutError as exc:  # concurrent.futures.TimeoutError
                if exc.__cause__ is not None:  # a request that timed out, not the round
                    raise
                if ends is not None and time.monotonic() >= ends:
                    self._cancel(job)
                    raise
            # the round ended with the job still running: wait another

    def _cancel(self, job: Any) -> None:
        """Cancel a job past job_timeout_seconds (BigQuery would run it on, and bill it, without us)."""
        with contextlib.suppress(Exception):
            job.cancel(retry=self._retry, timeout=self._deadline)

    # -- statements ------------------------------------------------------------------------------

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

    def _run(self, sql: str, page_size: int | None = None, **settings: Any) -> tuple[Any, Any]:
        """Run one statement as a query job and wait for it: the job and its rows."""
        client = self.client  # connecting fails with its own message
        with self._reporting("rejected a statement"):
            self._sent(sql)
            # job_retry=None: the insert is retried by `retry` alone (the library would wrap it in
            # a ten-minute retry of its own); a failed job is still restarted by _wait's job_retry.
            job = client.query(
                sql, job_config=self._job_config(**settings), retry=self._retry, timeout=self._deadline, job_retry=None
            )
            rows = self._wait(job, page_size)
        return job, rows

    def execute(self, statement: exp.Expr | str) -> int | None:
        job, _ = self._run(self.sql(statement))
        rows = job.num_dml_affected_rows
        return int(rows) if rows is not None else None

    def fetch_arrow(self, query: exp.Expr | str) -> pa.Table:
        _, rows = self._run(self.sql(query))
        with self._reporting("could not return a result"):
            table: pa.Table = rows.to_arrow(create_bqstorage_client=self.config.storage_api)
        return table

    def fetch_batches(self, query: exp.Expr | str, rows: int = 50_000) -> Generator[pa.RecordBatch, None, None]:
        _, result = self._run(self.sql(query), page_size=rows)
        with self._reporting("could not return a result"):
            yield from result.to_arrow_iterable()

    def create_temporary(self, name: str, query: exp.Query) -> exp.Table:
        # Temporary tables need a session or a script; an expiring table works everywhere.
        table = exp.table_(f"{name}_{uuid.uuid4().hex[:8]}", db=self.schema)
        expires = exp.TimestampAdd(
            this=exp.CurrentTimestamp(), expression=exp.Literal.number(TEMPORARY_TABLE_HOURS), unit=exp.var("HOUR")
        )
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
        client = self.client
        # The upload retries by count (1, 2, 4... s apart), not by deadline: as many as fit in it.
        uploads = int(math.log2(self._deadline + 1))
        with self._reporting(f"could not load the rows of {table.name}"):
            self._sent("")  # a load job: one round trip, rows as parquet
            job = client.load_table_from_file(
                buffer, reference, job_config=job_config, num_retries=uploads, timeout=self._deadline
            )
            try:  # a load job's polls have their own HTTP timeout (jobs.get: 128 s)
                job.result(retry=self._retry, timeout=self.config.job_timeout_seconds)
            except TimeoutError:
                self._cancel(job)
                raise
            if temporary:
                created = client.get_table(reference, retry=self._retry, timeout=self._deadline)
                created.expires = datetime.now(UTC) + timedelta(hours=TEMPORARY_TABLE_HOURS)
                client.update_table(created, ["expires"], retry=self._retry, timeout=self._deadline)
        return table

    @contextmanager
    def transaction(self) -> Iterator[None]:
        job, _ = self._run("BEGIN TRANSACTION", create_session=True)
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

    def exact_column_types(self, table: exp.Table) -> dict[str, str] | None:
        """A bare NUMERIC is NUMERIC(38, 9) and a bare BIGNUMERIC BIGNUMERIC(76, 38) (BigQuery's defaults)."""
        columns = self.table_columns(table)
        defaults = {"NUMERIC": "NUMERIC(38, 9)", "BIGNUMERIC": "BIGNUMERIC(76, 38)"}
        return None if columns is None else {name: defaults.get(kind, kind) for name, kind in columns.items()}

    def ensure_schema(self, name: str) -> None:
        from google.cloud import bigquery

        dataset = bigquery.Dataset(f"{self.config.project}.{name}")
        dataset.location = self.config.location
        client = self.client
        with self._reporting(f"could not create dataset {name}"):
            client.create_dataset(dataset, exists_ok=True, retry=self._retry, timeout=self._deadline)

    def describe(self) -> str:
        return f"bigquery project={self.config.project} dataset={self.schema}"

    def close(self) -> None:
        client, self._driver = self._driver, None
        if client is not None:
            client.close()


def _service_account_credentials(info: dict[str, Any], source: str) -> Any:
    """google-auth's credentials for a service-account key, or a ConfigError that shows none of it."""
    from google.oauth2 import service_account

    kind = info.get("type", "service_account")
    if kind != "service_account":
        raise ConfigError(
            f"BigQuery {source} is a key of type {str(kind)[:40]}, not a service-account key: give a service "
            "account's JSON key, or use method oauth for your own (gcloud) credentials"
        )
    try:
        return service_account.Credentials.from_service_account_info(info, scopes=SCOPES)  # type: ignore[no-untyped-call]
    except Exception as exc:
        missing = re.search(r"missing fields? [\w, ]+|The \w+ field was not found", str(exc))
        if missing:
            why = missing.group(0)
        else:
            why = "its private_key cannot be loaded" if isinstance(exc, ValueError) else type(exc).__name__
        raise ConfigError(
            f"BigQuery {source} could not be used as a service-account key ({why}): give the JSON key file "
            "of the service account unchanged (IAM > Service accounts > Keys), or create a new key"
        ) from None


def _unanswered(exc: BaseException) -> bool:
    """Whether the driver gave up because BigQuery (or the token endpoint) did not answer in time."""
    import requests
    from google.api_core.exceptions import RetryError
    from google.auth.exceptions import TransportError

    # RetryError: a transient failure retried until the deadline; the rest: one request's own failure
    # (a TimeoutError with a cause is a request that timed out; without one, a job past job_timeout_seconds).
    if isinstance(exc, TimeoutError):
        return exc.__cause__ is not None
    return isinstance(exc, (RetryError, TransportError, ConnectionError, requests.ConnectionError, requests.Timeout))


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _reason(exc: BaseException, secrets: list[str]) -> str:
    """What went wrong with a request, in a few words ("Connection refused", "timed out", "503 ...")."""
    from google.api_core.exceptions import GoogleAPICallError, RetryError

    cause = exc.cause if isinstance(exc, RetryError) and exc.cause is not None else exc
    if isinstance(cause, GoogleAPICallError):
        return redact(cause, secrets)
    text = f"{cause} {cause.__cause__ or ''}"
    errno = _ERRNO.search(text)
    if errno:
        return errno.group(1).strip()
    if "timed out" in text.lower() or isinstance(cause, TimeoutError):
        return "timed out"
    return type(cause).__name__
