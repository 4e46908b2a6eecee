"""``featuresql package-lambda``: the reader as a deployable Lambda zip, and its IAM policy.

The zip holds the reader's modules (``featuresql/serving/``, standard library
only; boto3 comes with Lambda's Python runtime), a stub ``featuresql/__init__.py``
(the full package is not needed to read), and ``online_manifest.json``: the
project's online models as they are now (``featuresql.online.stores.current_manifest``,
so a reader can be packaged before the first sync), with their schema versions,
without the target's ``endpoint_url`` (set ``FEATURESQL_DYNAMODB_ENDPOINT`` to point
a deployed reader elsewhere); nothing
else: no project files, no profiles, no credentials. Its handler is
``featuresql.serving.handler.handler``. Entries carry a fixed timestamp, so the
same manifest always gives the same zip (and the same code hash in Lambda).

The policy, written beside the zip, is the store's own (``OnlineStore.reader_policy``;
DynamoDB's allows ``dynamodb:BatchGetItem`` on the one table, the only call the
reader makes; add AWSLambdaBasicExecutionRole for logs). A store with no such
policy (the local SQLite file) cannot be read from Lambda.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import replace
from pathlib import Path

from featuresql.adapters.store import store_class
from featuresql.errors import ConfigError
from featuresql.files import atomic_path
from featuresql.online.stores import check_readable
from featuresql.serving.handler import MANIFEST_FILE
from featuresql.serving.manifest import Manifest
from featuresql.serving.push import stream_sources
from featuresql.serving.push_handler import SOURCE_FILE

HANDLER = "featuresql.serving.handler.handler"
PUSH_HANDLER = "featuresql.serving.push_handler.handler"
READER_MODULES = (
    "__init__",
    "items",
    "manifest",
    "request",
    "request_columns",
    "reader",
    "expressions",
    "expression_strings",
    "expression_times",
    "expression_errors",
    "tables",
    "handler",
    "partials",
    "push_records",
    "stream_items",
    "stream_reads",
    "stream_state",
)
PUSH_MODULES = ("push", "push_requests", "push_handler")
_STUB = '"""featuresql\'s online reader, packaged for AWS Lambda (featuresql package-lambda)."""\n'
_TIMESTAMP = (2024, 1, 1, 0, 0, 0)


def package_lambda(manifest: Manifest, out: Path, push_source: str | None = None) -> tuple[Path, Path]:
    """Write the zip to ``out`` and the policy to ``<out stem>-iam-policy.json``; return both paths.

    ``push_source``: the push Lambda of that source table instead (``featuresql.serving.push_handler``).
    """
    check_readable(manifest)
    if push_source is not None and push_source.lower() not in stream_sources(manifest):
        readable = ", ".join(sorted(stream_sources(manifest))) or "none: no stream model is online"
        raise ConfigError(f"--push {push_source}: no online stream model reads it (stream models read {readable})")
    policy_document = store_class(str(manifest.store.get("type"))).reader_policy(
        manifest.store, push=push_source is not None
    )
    if policy_document is None:
        raise ConfigError(
            f"target {manifest.target!r} uses the {manifest.store.get('type')} online store: the "
            "Lambda reader reads DynamoDB; package a target whose online store is dynamodb"
        )
    # A development endpoint (DynamoDB Local) must not ship: Lambda uses its region's endpoint.
    store = {key: value for key, value in manifest.store.items() if key != "endpoint_url"}
    manifest = replace(manifest, store=store)
    serving = Path(__file__).parents[1] / "serving"
    with atomic_path(out) as partial, zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        _add(archive, "featuresql/__init__.py", _STUB)
        for module in (*READER_MODULES, *(PUSH_MODULES if push_source is not None else ())):
            _add(archive, f"featuresql/serving/{module}.py", (serving / f"{module}.py").read_text(encoding="utf-8"))
        _add(archive, MANIFEST_FILE, json.dumps(manifest.to_json(), indent=2) + "\n")
        if push_source is not None:
            _add(archive, SOURCE_FILE, json.dumps({"source": push_source.lower()}) + "\n")
    policy = out.with_name(f"{out.stem}-iam-policy.json")
    with atomic_path(policy) as partial:
        partial.write_text(json.dumps(policy_document, indent=2) + "\n", encoding="utf-8")
    return out, policy


def _add(archive: zipfile.ZipFile, name: str, text: str) -> None:
    entry = zipfile.ZipInfo(name, date_time=_TIMESTAMP)
    entry.external_attr = 0o644 << 16
    entry.compress_type = zipfile.ZIP_DEFLATED
    archive.writestr(entry, text)
