"""What each entry point imports, in a fresh interpreter (click's tests/test_imports.py style).

`import featuresql` must stay cheap, `featuresql --help` must not load the SQL
stack, and compiling must not need a warehouse driver.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from featuresql.online.packaging import PUSH_MODULES, READER_MODULES

HEAVY = {
    "sqlglot",
    "duckdb",
    "pydantic",
    "jinja2",
    "yaml",
    "pyarrow",
    "pandas",
    "rich",
    "snowflake",
    "google",
}


def imported_after(code: str, cwd: Path | None = None) -> set[str]:
    """Top-level packages loaded by running ``code`` in a new interpreter."""
    report = "import json, sys\nprint(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    script = f"{code}\n{report}"
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=cwd,
        check=True,
    )
    return set(json.loads(completed.stdout.strip().splitlines()[-1]))


def test_import_featuresql_is_cheap():
    assert imported_after("import featuresql") & HEAVY == set()


def test_help_loads_only_click():
    code = (
        "from click.testing import CliRunner\n"
        "from featuresql.cli.main import cli\n"
        "assert CliRunner().invoke(cli, ['--help']).exit_code == 0"
    )
    assert imported_after(code) & HEAVY == set()


def test_adapter_registry_imports_drivers_lazily():
    assert "duckdb" not in imported_after("import featuresql.adapters")


def test_compile_needs_no_warehouse_driver(example_project):
    code = "from featuresql.context import Context\nContext('.').compiled"
    loaded = imported_after(code, cwd=example_project)
    assert "sqlglot" in loaded
    assert loaded & {"duckdb", "snowflake", "google", "pandas"} == set()


def test_the_serving_package_imports_only_the_standard_library():
    """The Lambda reader's shared item layout: no featuresql core, no SQL stack, no boto3 needed."""
    loaded = imported_after("import featuresql.serving.items")
    assert loaded & (HEAVY | {"boto3", "botocore", "click"}) == set()
    code = "import featuresql.serving.items, sys; print(sorted(m for m in sys.modules if m.startswith('featuresql')))"
    listed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert listed.stdout.strip() == "['featuresql', 'featuresql.serving', 'featuresql.serving.items']"


def modules_loaded_by(code: str, env: dict[str, str] | None = None) -> tuple[set[str], str]:
    """The modules (full names) that ``code`` loads in a new interpreter, and what it printed before."""
    script = (
        f"import json, sys\n_before = set(sys.modules)\n{code}\nprint(json.dumps(sorted(set(sys.modules) - _before)))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )
    assert completed.returncode == 0, completed.stderr
    *printed, modules = completed.stdout.strip().splitlines()
    return set(json.loads(modules)), "\n".join(printed)


def assert_only_the_reader_of_featuresql(loaded: set[str]) -> None:
    ours = {name for name in loaded if name.split(".")[0] == "featuresql"}
    modules = (*READER_MODULES, *PUSH_MODULES, "http")
    packaged = {f"featuresql.serving.{module}" for module in modules if module != "__init__"}
    assert {name for name in ours if name not in ("featuresql", "featuresql.serving")} <= packaged, ours


def test_the_reader_entry_points_load_only_the_standard_library():
    """The Lambda handler, the reader and `featuresql serve`'s server: stdlib and featuresql.serving, no boto3."""
    loaded, _ = modules_loaded_by(
        "import featuresql.serving.handler, featuresql.serving.reader, featuresql.serving.http"
    )
    assert_only_the_reader_of_featuresql(loaded)
    assert "featuresql.serving.handler" in loaded and "featuresql.serving.http" in loaded
    outside = {name.split(".")[0] for name in loaded} - {"featuresql"} - set(sys.stdlib_module_names)
    assert outside == set()  # boto3 comes only when a DynamoDB table is opened


SERVE_ONE_REQUEST = """
from featuresql.serving.handler import handler
response = handler({"entities": {"user_id": [1, 2]}, "features": ["m"]}, None)
print(json.dumps(response, default=str))  # a Decimal as its digits
"""


def _model() -> Any:
    from featuresql.serving.manifest import OnlineFeature, OnlineModel

    return OnlineModel("m", (("user_id", "integer"),), {"f": OnlineFeature("f", "decimal")})


def _manifest_file(folder: Path, store: dict[str, object]) -> Path:
    from featuresql.serving.manifest import Manifest

    path = folder / "manifest.json"
    path.write_text(json.dumps(Manifest("p", "t", store, {"m": _model()}).to_json()))
    return path


def _marker() -> dict[str, object]:
    """The sync marker of a store holding model ``m`` under the manifest's schema."""
    held = json.dumps({"m": _model().schema})
    return {"pk": {"S": "#featuresql-sync"}, "_ts": {"N": "1"}, "_v": {"N": "1"}, "models": {"S": held}}


@contextlib.contextmanager
def fake_dynamodb(*items: dict[str, object]) -> Iterator[str]:
    """An HTTP endpoint answering every BatchGetItem with ``items`` (enough for boto3 to parse)."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            assert self.headers["X-Amz-Target"] == "DynamoDB_20120810.BatchGetItem"
            [table] = request["RequestItems"]
            body = json.dumps({"Responses": {table: list(items)}, "UnprocessedKeys": {}}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/x-amz-json-1.0")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


AWS_DUMMY = {
    "AWS_ACCESS_KEY_ID": "AKIAFEATURESQLTEST00",
    "AWS_SECRET_ACCESS_KEY": "not-a-secret",
    "AWS_EC2_METADATA_DISABLED": "true",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
}


def test_serving_from_dynamodb_loads_boto3_and_nothing_heavy(tmp_path):
    item = {"pk": {"S": "m#[1]"}, "_ts": {"N": "1782777600000000"}, "f": {"N": "12345678901234567.89"}}
    item["_sv"] = {"S": _model().schema}
    with fake_dynamodb(item, _marker()) as endpoint:
        store = {"type": "dynamodb", "table": "features", "region": "us-east-1", "endpoint_url": endpoint}
        manifest = _manifest_file(tmp_path, store)
        loaded, printed = modules_loaded_by(SERVE_ONE_REQUEST, {"FEATURESQL_MANIFEST": str(manifest), **AWS_DUMMY})
    results = json.loads(printed)["results"]
    assert [result["features"]["m__f"] for result in results] == ["12345678901234567.89", None]
    tops = {name.split(".")[0] for name in loaded}
    assert {"boto3", "botocore"} <= tops
    assert tops & (HEAVY | {"click", "sqlglot", "pydantic", "pyarrow", "duckdb", "jinja2", "yaml"}) == set()
    assert_only_the_reader_of_featuresql(loaded)


def test_serving_from_the_local_store_loads_no_boto3(tmp_path):
    manifest = _manifest_file(tmp_path, {"type": "local", "path": str(tmp_path / "store.sqlite")})
    from featuresql.serving.tables import SQLITE_SCHEMA

    with closing(sqlite3.connect(tmp_path / "store.sqlite")) as connection, connection:  # synced, empty
        connection.execute(SQLITE_SCHEMA)
        connection.execute("insert into items values ('#featuresql-sync', 1, 1, null, ?)", [json.dumps(_marker())])
    loaded, printed = modules_loaded_by(SERVE_ONE_REQUEST, {"FEATURESQL_MANIFEST": str(manifest)})
    assert [result["features"] for result in json.loads(printed)["results"]] == [{"m__f": None}, {"m__f": None}]
    assert_only_the_reader_of_featuresql(loaded)
    assert {name.split(".")[0] for name in loaded} - {"featuresql"} <= set(sys.stdlib_module_names)
