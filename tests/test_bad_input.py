"""The bad-input corpus (tests/bad_input/*.yml): every case fails cleanly and changes nothing.

A case is a copy of the built example project with one mistake in it (an edit
of a file, a file written, a command line, an HTTP request). For each, the
runner checks what a user or a caller sees and what is left behind:

* the exit code (or HTTP status), and the expected error as ONE line of stderr
  (``Error: <message>``; ``message`` is exact, ``match`` a regex on the text
  after ``Error: ``), or the JSON error message of the reader;
* no "Traceback" anywhere in the output (``--debug`` is never passed);
* nothing changed: every table of the DuckDB file in every schema (the models,
  the raw sources, featuresql's ``intervals``, ``run_log``, ``locks`` and sync
  state), every row of the local online store, and every other file of the
  project. A failed command may write only ``target/logs/`` and
  ``target/run_results.json``: like dbt, a run or test that starts and fails
  records its result there for schedulers to read (see ``ALLOWED_WRITES``).

The example project is built ONCE per session (small demo data, run and sync at
``NOW``) into a template folder; each case works on its own copy of it. CLI cases
call the console entry point ``featuresql.cli.main:main`` in process (an exception
escaping it counts as the traceback Python would print); the cases marked
``subprocess: true`` (a few per file) run it as a real process. Reader cases are
sent over HTTP to one ``featuresql serve`` of the template, or to the Lambda
handler with a recorded API Gateway event (tests/events/).

Adding a case: append it to the file of its area with ``name``, ``why``,
``edits`` (``[file, old, new]``; old null writes the whole file) and/or ``files``
(``text``, ``bytes_hex``, ``repeat`` or ``parquet``), ``expand`` / ``latin1`` for
huge or mis-encoded files, ``args`` (``vars`` are merged over the small demo
vars; ``raw_vars`` is passed as written), ``exit_code`` (default 2) and
``message`` or ``match``; a reader case gives ``request`` or ``event`` and
``status``.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import http.client
import io
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest
import yaml
from cli_process import serving
from lambda_runtime import load_event
from projects import SMALL_VARS, apply_edits, copy_example

pytestmark = pytest.mark.duckdb

CORPUS = Path(__file__).parent / "bad_input"
CATEGORIES = (
    "project_yml",
    "profiles_yml",
    "sources_yml",
    "model_sql",
    "model_yaml",
    "services_yml",
    "cli_args",
    "spine_files",
    "push_files",
    "reader_requests",
)
MINIMUM_CASES = 60
NOW = "2026-06-30T05:00:00"
DUCKDB_FILE = "target/cash_advance.duckdb"
ONLINE_FILE = "target/online/dev.sqlite"
MANIFEST_FILE = "target/online/dev/manifest.json"
# What a failed command may write: logs, and the run/test results a scheduler reads (dbt writes
# run_results.json after a failed run too). Database files are compared by content, not bytes.
ALLOWED_WRITES = ("target/logs/", "target/run_results.json")
DATABASE_FILES = (".duckdb", ".duckdb.wal", ".sqlite", ".sqlite-journal", ".sqlite-wal", ".sqlite-shm")
SECRETS = ("SNOWFLAKE_ACCOUNT", "SNOWFLAKE_USER", "SNOWFLAKE_PASSWORD", "BIGQUERY_PROJECT")


# -- the corpus ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    category: str
    data: dict[str, Any]

    @property
    def name(self) -> str:
        return str(self.data["name"])

    @property
    def id(self) -> str:
        return f"{self.category}:{self.name}"


def load_corpus() -> list[Case]:
    cases = []
    for category in CATEGORIES:
        path = CORPUS / f"{category}.yml"
        if not path.exists():
            continue
        for data in yaml.safe_load(path.read_text(encoding="utf-8")) or []:
            cases.append(Case(category, data))
    return cases


CASES = load_corpus()


def test_the_corpus_is_large_and_covers_every_category() -> None:
    assert len(CASES) >= MINIMUM_CASES, len(CASES)
    assert {case.category for case in CASES} == set(CATEGORIES)
    assert len({case.id for case in CASES}) == len(CASES), "case names must be unique per file"
    for case in CASES:
        assert case.data.get("why"), f"{case.id} must say why"
        assert ("message" in case.data) != ("match" in case.data), f"{case.id}: give message or match"
        assert "args" in case.data or "request" in case.data or "event" in case.data, case.id
        assert not {"xfail", "skip"} & case.data.keys(), f"{case.id}: a known bug fails its case, never skips it"


# -- the template project -------------------------------------------------------------------


def featuresql(project: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """The real CLI entry point in a fresh process, in ``project``, without colours."""
    environment = {key: value for key, value in os.environ.items() if key not in SECRETS}
    environment.update({"NO_COLOR": "1", "HOME": str(project / ".home"), **(env or {})})
    return subprocess.run(
        [sys.executable, "-c", "from featuresql.cli.main import main; main()", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )


@pytest.fixture(scope="session")
def template_databases(template: Path) -> dict[str, Any]:
    """The template's warehouse and online store, snapshotted once."""
    taken = snapshot(template)
    return {"warehouse": taken["warehouse"], "online": taken["online"]}


def featuresql_in_process(
    project: Path, args: list[str], env: dict[str, str] | None, monkeypatch: pytest.MonkeyPatch
) -> subprocess.CompletedProcess[str]:
    """The console entry point (``featuresql.cli.main:main``) called in this process, as a shell would run it.

    The traceback check stays honest: an exception escaping ``main`` (anything but SystemExit) is
    what Python would print as a traceback, so its traceback is written to the captured stderr.
    """
    from featuresql.cli.main import main

    monkeypatch.chdir(project)
    for name in SECRETS:
        monkeypatch.delenv(name, raising=False)
    for name, value in {"NO_COLOR": "1", "HOME": str(project / ".home"), **(env or {})}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(sys, "argv", ["featuresql", *args])
    stdout, stderr = io.StringIO(), io.StringIO()
    code: int = 0
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        except BaseException:
            stderr.write(traceback.format_exc())
            code = 1
    return subprocess.CompletedProcess(args, code, stdout.getvalue(), stderr.getvalue())


@pytest.fixture(scope="session")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example project, run and synced at NOW on small data: every case starts from a copy."""
    project = copy_example(tmp_path_factory.mktemp("bad_input") / "template")
    small = json.dumps(SMALL_VARS)
    for command in ("run", "sync"):
        done = featuresql(project, "--vars", small, command, "--now", NOW)
        assert done.returncode == 0, done.stdout + done.stderr
    return project


# -- snapshots: everything a failed command must leave as it was ---------------------------


def snapshot(project: Path, databases: dict[str, Any] | None = None) -> dict[str, Any]:
    """Every table of the warehouse and the online store (by content) and every other file (by hash).

    ``databases``: the warehouse and online parts already known (a fresh copy of the template has
    the template's, byte for byte), so only the files are hashed.
    """
    files = {}
    for path in sorted(project.rglob("*")):
        relative = path.relative_to(project).as_posix()
        if path.is_dir() or relative.startswith((*ALLOWED_WRITES, ".home/")):
            continue
        # Database files: compared by content below; here, none may appear or vanish.
        is_database = relative.endswith(DATABASE_FILES)
        files[relative] = "database" if is_database else hashlib.sha256(path.read_bytes()).hexdigest()
    if databases is not None:
        return {"files": files, **databases}
    return {
        "files": files,
        "warehouse": warehouse_tables(project / DUCKDB_FILE),
        "online": online_items(project / ONLINE_FILE),
    }


def warehouse_tables(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    with duckdb.connect(str(path), read_only=True) as connection:
        tables = connection.sql(
            "select table_schema, table_name, table_type from information_schema.tables "
            "where table_catalog = current_database() order by all"
        ).fetchall()
        result: dict[str, Any] = {}
        for schema, table, kind in tables:
            name = f'"{schema}"."{table}"'
            columns = connection.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? order by ordinal_position",
                [schema, table],
            ).fetchall()
            rows = connection.execute(f"select count(*), sum(hash(t)) from {name} t").fetchall()
            result[f"{schema}.{table}"] = (kind, columns, rows)
    return result


def online_items(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = [row[0] for row in connection.execute("select name from sqlite_master where type = 'table'")]
        return {table: sorted(map(repr, connection.execute(f'select * from "{table}"'))) for table in sorted(tables)}
    finally:
        connection.close()


# -- applying a case -------------------------------------------------------------------------


def prepare(case: Case, template: Path, destination: Path) -> Path:
    """A copy of the template with the case's edits applied and its files written."""
    shutil.copytree(template, destination, symlinks=True)
    apply_edits(destination, case.data.get("edits", []), label=f"{case.id}: ")
    for relative, spec in (case.data.get("files") or {}).items():
        write_file(destination / relative, spec)
    expand = case.data.get("expand")
    if expand:  # a huge input, generated: ``marker`` in ``file`` becomes ``line`` repeated ``count`` times
        path = destination / expand["file"]
        lines = "".join(expand["line"].replace("{n}", str(n)) for n in range(int(expand["count"])))
        path.write_text(path.read_text(encoding="utf-8").replace(expand["marker"], lines), encoding="utf-8")
    for relative in case.data.get("latin1", []):  # the file re-encoded, as an editor set to Latin-1 saves it
        path = destination / relative
        path.write_bytes(path.read_text(encoding="utf-8").encode("latin-1"))
    return destination


def write_file(path: Path, spec: dict[str, Any]) -> None:
    """``text`` (exact), ``bytes_hex`` (raw bytes), ``repeat`` (header + a row many times) or ``parquet``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if "text" in spec:
        path.write_text(spec["text"], encoding="utf-8")
    elif "bytes_hex" in spec:
        path.write_bytes(bytes.fromhex(spec["bytes_hex"]))
    elif "repeat" in spec:
        repeat = spec["repeat"]
        body = repeat.get("header", "") + repeat["row"] * int(repeat["count"]) + repeat.get("footer", "")
        path.write_text(body, encoding="utf-8")
    elif "parquet" in spec:
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = spec["parquet"]
        arrays = {}
        for name, column in columns.items():
            kind = column["type"]
            values = column["values"]
            if kind.startswith("timestamp"):
                from datetime import datetime

                values = [None if v is None else datetime.fromisoformat(v) for v in values]
            arrays[name] = pa.array(values, type=_arrow_type(kind))
        pq.write_table(pa.table(arrays), path)
    else:
        raise AssertionError(f"unknown file spec {spec}")


def _arrow_type(kind: str) -> Any:
    import pyarrow as pa

    match = re.fullmatch(r"timestamp\[(\w+)(?:, tz=(.+))?\]", kind)
    if match:
        return pa.timestamp(match[1], tz=match[2])
    return {
        "int64": pa.int64(),
        "string": pa.string(),
        "float64": pa.float64(),
        "date32": pa.date32(),
        "bool": pa.bool_(),
    }[kind]


def command_line(case: Case) -> list[str]:
    """Global --vars (the small demo data, merged with the case's ``vars``), then the case's args."""
    if "raw_vars" in case.data:
        variables = case.data["raw_vars"]
    else:
        variables = json.dumps({**SMALL_VARS, **(case.data.get("vars") or {})})
    return ["--vars", variables, *[str(arg) for arg in case.data["args"]]]


def assert_error_line(case: Case, stderr: str) -> None:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"{case.id}: expected one line of error output, got {lines}"
    line = lines[0]
    assert line.startswith("Error: "), f"{case.id}: {line}"
    text = line.removeprefix("Error: ")
    if "message" in case.data:
        assert text == case.data["message"], f"{case.id}:\n  got:      {text}\n  expected: {case.data['message']}"
    else:
        assert re.fullmatch(case.data["match"], text), f"{case.id}:\n  got: {text}\n  regex: {case.data['match']}"


# -- the reader ------------------------------------------------------------------------------


@dataclass
class Served:
    address: tuple[str, int]
    log: Path


@pytest.fixture(scope="session")
def served(template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """``featuresql serve --port 0`` on the template project."""
    log = tmp_path_factory.mktemp("serve") / "stderr.log"
    with serving(template, log) as (address, _):
        yield Served(address, log)


def request_body(spec: dict[str, Any]) -> bytes | None:
    if "json" in spec:
        return json.dumps(spec["json"]).encode()
    if "raw" in spec:
        return str(spec["raw"]).encode("utf-8", "surrogatepass")
    if "raw_hex" in spec:
        return bytes.fromhex(spec["raw_hex"])
    if "repeat" in spec:
        repeat = spec["repeat"]
        return (repeat.get("prefix", "") + repeat["text"] * int(repeat["count"]) + repeat.get("suffix", "")).encode()
    return None


def send(served: Served, spec: dict[str, Any]) -> tuple[int, Any]:
    """One HTTP request to the server; ``raw_request`` sends bytes as they are (a malformed request)."""
    if "raw_request" in spec:
        import socket

        with socket.create_connection(served.address, timeout=10) as sock:
            sock.sendall(spec["raw_request"].encode("latin-1"))
            response = b""
            while chunk := sock.recv(65536):
                response += chunk
                if b"\r\n\r\n" in response and response.rstrip().endswith(b"}"):
                    break
        head, _, body = response.partition(b"\r\n\r\n")
        return int(head.split()[1]), json.loads(body)
    connection = http.client.HTTPConnection(*served.address, timeout=30)
    try:
        connection.request(
            spec.get("method", "POST"),
            spec.get("path", "/features"),
            body=request_body(spec),
            headers=spec.get("headers") or {},
        )
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def invoke_handler(template: Path, case: Case, monkeypatch: pytest.MonkeyPatch) -> tuple[int, Any]:
    """The Lambda handler with a recorded event, its body (or query string) replaced by the case's."""
    from featuresql.serving import handler as handler_module

    monkeypatch.setenv("FEATURESQL_MANIFEST", str(template / MANIFEST_FILE))
    monkeypatch.setattr(handler_module, "_reader", None)
    spec = case.data["event"]
    if spec.get("name") == "direct":
        response = handler_module.handler(spec["payload"], None)
        return int(response["error"]["status"]), response
    event = copy.deepcopy(load_event(spec["name"]))
    for key, value in (spec.get("set") or {}).items():
        event[key] = value
    if "body" in spec:
        body = request_body(spec["body"])
        event["body"] = None if body is None else body.decode("utf-8", "surrogatepass")
        event["isBase64Encoded"] = False
    if "body_base64" in spec:
        event["body"], event["isBase64Encoded"] = spec["body_base64"], True
    response = handler_module.handler(event, None)
    return int(response["statusCode"]), json.loads(response["body"])


def assert_reader_error(case: Case, status: int, body: Any) -> None:
    assert status == case.data["status"], f"{case.id}: status {status}, body {body}"
    assert set(body) == {"error"} and body["error"]["status"] == status, f"{case.id}: {body}"
    message = body["error"]["message"]
    assert "\n" not in message and "Traceback" not in message, f"{case.id}: {message}"
    if "message" in case.data:
        assert message == case.data["message"], f"{case.id}:\n  got:      {message}\n  expected: {case.data['message']}"
    else:
        assert re.fullmatch(case.data["match"], message), f"{case.id}:\n  got: {message}\n  regex: {case.data['match']}"


# -- the test --------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_bad_input(
    case: Case,
    template: Path,
    template_databases: dict[str, Any],
    tmp_path: Path,
    request: pytest.FixtureRequest,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if "request" in case.data:
        served = request.getfixturevalue("served")
        before, logged = snapshot(template, template_databases), served.log.read_text()
        status, body = send(served, case.data["request"])
        assert_reader_error(case, status, body)
        assert "Traceback" not in served.log.read_text()[len(logged) :]
        assert snapshot(template) == before
        return
    if "event" in case.data:
        before = snapshot(template, template_databases)
        status, body = invoke_handler(template, case, monkeypatch)
        assert_reader_error(case, status, body)
        assert snapshot(template) == before
        return
    project = prepare(case, template, tmp_path / "project")
    before = snapshot(project, template_databases)
    if case.data.get("subprocess"):
        done = featuresql(project, *command_line(case), env=case.data.get("env"))
    else:
        done = featuresql_in_process(project, command_line(case), case.data.get("env"), monkeypatch)
    output = done.stdout + done.stderr
    assert done.returncode == case.data.get("exit_code", 2), f"{case.id}: exit {done.returncode}\n{output}"
    assert "Traceback" not in output, f"{case.id}:\n{output}"
    assert_error_line(case, done.stderr)
    after = snapshot(project)
    for part in ("files", "warehouse", "online"):
        assert after[part] == before[part], f"{case.id}: the {part} changed: {_difference(before[part], after[part])}"


def _difference(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    keys = sorted(set(before) | set(after))
    return [key for key in keys if before.get(key) != after.get(key)]
