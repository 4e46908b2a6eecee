"""The online benchmarks' project: N entities with deterministic features, and its online store.

Shared by ``online.py`` (sync and reads on DynamoDB Local), ``load.py`` (the reader under
load on dynalite) and ``sync_memory.py`` (memory of a long sync). The top level imports the
standard library and ``harness`` only: Feast's interpreter imports ``online.py`` without
featuresql or DuckDB.

The project has one entity ``user`` (``user_id`` bigint) and two online snapshot models over
the source table ``raw.users`` (``ts`` and 20 features per user, generated in the project's
DuckDB file):

- ``wide``: the 20 features (10 BIGINT, 5 rounded and 5 full-precision DOUBLE);
- ``narrow``: 5 features computed from them (BIGINT, DOUBLE and a string), for the first
  ``READ_ENTITIES`` users only (or as many as ``write_project`` is told);

and the on-demand model ``ratios``: 2 features from a request column ``amount`` and ``wide``'s
features (a decimal division and a comparison), computed by the reader per request.

``build_project`` writes and builds it; ``running_server`` starts its store's server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness import use_test_helpers

PROJECT = "bench_online"
MODEL, SECOND_MODEL, ON_DEMAND = "wide", "narrow", "ratios"
FEATURES = tuple(f"f{n:02d}" for n in range(1, 21))
SECOND_FEATURES = ("g1", "g2", "g3", "g4", "g5")
READ_ENTITIES = 20_000  # `narrow` holds these entities (and reads draw from them)
REGION = "us-east-1"


def dynamodb_settings(endpoint_url: str, workers: int, table: str = PROJECT) -> str:
    """project.yml's ``online`` value for a DynamoDB store at ``endpoint_url``."""
    return (
        f"{{store: dynamodb, endpoint_url: '{endpoint_url}', region: {REGION}, "
        f"table: {table}, workers: {workers}}}"
    )


def local_settings() -> str:
    """project.yml's ``online`` value for the local (SQLite) store, in the project's target/."""
    return "{store: local}"


def write_project(folder: Path, online: str, narrow_entities: int | None = READ_ENTITIES) -> None:
    """project.yml (with ``online`` settings), the source and both models, in ``folder``.

    ``narrow`` holds the first ``narrow_entities`` users (None: every user).
    """
    (folder / "features").mkdir(parents=True)
    (folder / "project.yml").write_text(
        f"name: {PROJECT}\ndialect: duckdb\n"
        "entities:\n  user: {keys: {user_id: bigint}}\n"
        f"online: {online}\n"
    )
    (folder / "features" / "sources.yml").write_text(
        "version: 1\nsources:\n  - name: app\n    schema: raw\n    tables:\n      - name: users\n"
    )
    header = "{{ config(entity='user', timestamp='ts', online=true) }}\nselect user_id, ts, "
    source = "\nfrom {{ source('app', 'users') }}\n"
    (folder / "features" / f"{MODEL}.sql").write_text(header + ", ".join(FEATURES) + source)
    (folder / "features" / f"{SECOND_MODEL}.sql").write_text(
        f"{header}f01 % 7 as g1, f02 % 100 as g2, f11 * 2 as g3,\n"
        "    case when f03 % 2 = 0 then 'even' else 'odd' end as g4, f16 + f17 as g5"
        + source
        + ("" if narrow_entities is None else f"where user_id <= {narrow_entities}\n")
    )
    (folder / "features" / f"{ON_DEMAND}.sql").write_text(
        "{{ config(kind='on_demand', request={'amount': 'decimal(12,2)'}) }}\n"
        f"select request.amount / nullif({MODEL}.f11, 0) as amount_vs_f11,\n"
        f"    request.amount > {MODEL}.f01 as above_f01\n"
        f"from {{{{ ref('{MODEL}') }}}}\n"
    )


def create_source(folder: Path, entities: int) -> None:
    """``raw.users`` in the project's default DuckDB file: deterministic values per user."""
    import duckdb

    columns = [f"(hash(i, {n}) % 100000)::bigint as f{n:02d}" for n in range(1, 11)]
    columns += [f"round((hash(i, {n}) % 10^7) / 1000, 3) as f{n:02d}" for n in range(11, 16)]
    columns += [f"(hash(i, {n}) % 1000000007) / 997 as f{n:02d}" for n in range(16, 21)]
    (folder / "target").mkdir()
    with duckdb.connect(str(folder / "target" / f"{PROJECT}.duckdb")) as connection:
        connection.execute("create schema raw")
        connection.execute(
            "create table raw.users as select i as user_id, "
            "timestamp '2025-06-01' + to_seconds(i % 86400) as ts, "
            f"{', '.join(columns)} from range(1, {entities + 1}) as t(i)"
        )


def build_project(
    folder: Path, online: str, entities: int, narrow_entities: int | None = READ_ENTITIES
) -> Any:
    """The project of ``entities`` users (see ``write_project``) after ``featuresql run``.

    Returns its open ``Context``; the caller closes it.
    """
    from featuresql.context import Context

    write_project(folder, online, narrow_entities)
    create_source(folder, entities)
    context = Context(folder)
    context.run()
    return context


def model_rows(context: Any, model: str) -> list[dict[str, Any]]:
    """The model's table in DuckDB, by ``user_id``."""
    relation = context.compiled.models[model].relation.sql("duckdb")
    return list(context.query(f"select * from {relation} order by user_id").to_pylist())


def isolated_aws_environment() -> None:
    """Dummy credentials for a local DynamoDB, and nothing of the user's own AWS set-up."""
    for name in (
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_DYNAMODB",
    ):
        os.environ.pop(name, None)
    os.environ.update(
        AWS_ACCESS_KEY_ID="AKIAFEATURESQLBENCH0",
        AWS_SECRET_ACCESS_KEY="featuresql-bench-not-a-secret",
        AWS_DEFAULT_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
    )


@contextmanager
def running_server(kind: str, folder: Path) -> Iterator[str]:
    """A DynamoDB server in ``folder`` for the run; yields its endpoint URL.

    ``dynamodb`` is AWS's DynamoDB Local (it listens on every interface: only inside
    ``ci/in_private_network.sh``), ``dynalite`` the Node.js imitation (loopback only).
    """
    use_test_helpers()
    if kind == "dynalite":
        from dynalite_server import running_dynalite

        with running_dynalite(folder / "dynalite") as endpoint:
            yield endpoint.endpoint_url
    else:
        from dynamodb_server import running_dynamodb_local

        with running_dynamodb_local(folder / "dynamodb") as endpoint:
            yield endpoint.endpoint_url
