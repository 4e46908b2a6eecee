"""Benchmark pushing events and reading fresh windows, against hand-written boto3 on DynamoDB Local.

DynamoDB Local listens on every network interface, so run this in a private network namespace::

    bash ci/in_private_network.sh python bench/push.py            # 20k records, 2,000 reads
    bash ci/in_private_network.sh python bench/push.py --smoke    # a few seconds, for CI

A project in a temporary folder has one stream model, ``spend`` (``grain='1h'``,
``stream_grain='1m'``): count, sum and last amount over 1 hour, 24 hours and 7 days of a
source table of card events. Entity 1 has a busy history: 1,000 events in the 7 days
before the sync's boundary ``B``. The project is run and synced to DynamoDB Local.

1. **Push throughput.** ``--records`` records of 2,000 entities, timed after ``B``, in
   batches of 500, as a Kinesis batch brings them: ``featuresql.serving.push.push`` (reading,
   checking and running each record through the model's row-level programs, then one
   UpdateItem per pushed item on the reader's 4 threads) against hand-written boto3: the same
   UpdateItem calls (the same keys and attributes, built beforehand) on 4 threads, each
   thread its own client, batch by batch. Target: at least 0.7x the baseline's records/s.
   Each side writes its own table; both are then read back and must hold the same items.
2. **Read latency.** 1 read of entity 1 (its 26 KB state item and the pushed items of the
   tiles since ``B``), the reader's handler (a direct invocation) against a raw
   ``batch_get_item`` of the same keys, alternating. Overhead = handler - raw at p50 and p99;
   target: at most 1 ms at p99.
3. **Push to read.** A record pushed for entity 1, then reads until one counts it: through
   ``featuresql serve`` (``POST /push``, then ``POST /features``, over HTTP), and through the
   Lambda handlers called in process (a Kinesis event, then a direct invocation of the
   reader). The time from the push's answer to the first read that includes it; target: p99
   under 1 s (a push is written before it is answered, so the first read includes it).
4. **Item sizes** of entity 1, as DynamoDB counts them (names and values in bytes).

Timings never fail the run: it exits 1 only when something is functionally wrong.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import random
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from harness import machine_load, percentile, verdict, work_folder
from online_project import REGION, isolated_aws_environment, running_server

# The sync's boundary: this hour (five minutes ago: the events pushed in B's first minute count in
# every read), as reads through `featuresql serve` read at the real clock.
B = (datetime.now(UTC) - timedelta(minutes=5)).replace(
    tzinfo=None, minute=0, second=0, microsecond=0
)
BUSY_USER = 1
BATCH = 500
ENTITIES = 2000
WORKERS = 4
TARGET_RATIO, TARGET_OVERHEAD_MS, TARGET_LATENCY_S = 0.7, 1.0, 1.0
MODEL = """{{ config(entity='user', timestamp='ts', grain='1h', online=true, stream_grain='1m') }}
select user_id, ts,
    {{ window_count(windows=['1h', '24h', '7d']) }},
    {{ window_sum('amount', windows=['1h', '24h', '7d']) }},
    {{ window_last('amount', windows=['7d'], tie_break='event_id') }}
from {{ source('cards', 'events') }}
"""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=20_000)
    parser.add_argument("--reads", type=int, default=2000)
    parser.add_argument("--latency-rounds", type=int, default=200)
    parser.add_argument("--smoke", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.records, args.reads, args.latency_rounds = 2000, 100, 10
    return args


def write_project(folder: Path, endpoint: str) -> None:
    (folder / "features").mkdir(parents=True)
    (folder / "project.yml").write_text(
        "name: bench_push\ndialect: duckdb\nentities:\n  user:\n    keys: {user_id: bigint}\n"
    )
    (folder / "profiles.yml").write_text(
        f"target: dev\ntargets:\n  dev:\n    type: duckdb\n    path: {folder / 'w.duckdb'}\n"
        f"    online: {{store: dynamodb, table: bench_push, endpoint_url: '{endpoint}', "
        f"region: {REGION}, "
        f"workers: {WORKERS}}}\n"
    )
    (folder / "features" / "sources.yml").write_text(
        "version: 1\nsources:\n  - name: cards\n    schema: raw\n    tables:\n"
        "      - name: events\n"
        "        event_time: ts\n        columns:\n          - {name: event_id, type: bigint}\n"
        "          - {name: user_id, type: bigint}\n"
        "          - {name: amount, type: 'decimal(12,2)'}\n"
        "          - {name: ts, type: timestamp}\n"
    )
    (folder / "features" / "spend.sql").write_text(MODEL)


def history() -> list[tuple[int, int, Decimal, datetime]]:
    """Entity 1's 1,000 events in the 7 days before B, and a few for the other entities."""
    rng = random.Random(7)
    rows = []
    for number in range(1000):
        moment = B - timedelta(seconds=rng.randrange(7 * 86400))
        rows.append((number, BUSY_USER, Decimal(rng.randrange(1, 50_000)).scaleb(-2), moment))
    for user in range(2, ENTITIES + 2):
        rows.append(
            (10_000 + user, user, Decimal("12.34"), B - timedelta(hours=rng.randrange(1, 100)))
        )
    return rows


def build(folder: Path) -> Any:
    import duckdb
    from featuresql.context import Context
    from featuresql.online.sync import run_sync

    with duckdb.connect(str(folder / "w.duckdb")) as connection:
        connection.execute("create schema raw")
        connection.execute(
            "create table raw.events "
            "(event_id bigint, user_id bigint, amount decimal(12,2), ts timestamp)"
        )
        connection.executemany("insert into raw.events values (?, ?, ?, ?)", history())
    with Context(folder) as context:
        result = context.run((), now=B)
        assert result.ok, result
        run_sync(context, now=B)
        from featuresql.online.stores import read_manifest

        return read_manifest(context)


def records(count: int, seed: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "event_id": 1_000_000 * seed + n,
            "user_id": rng.randrange(2, ENTITIES + 2),
            "amount": f"{rng.randrange(1, 100_000) / 100:.2f}",
            "ts": (B + timedelta(seconds=rng.randrange(60))).isoformat()
            + "Z",  # counted by reads from B + 1m
        }
        for n in range(count)
    ]


def planned_updates(manifest: Any, batch: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """What push writes for ``batch``, built with featuresql's own functions (for the baseline)."""
    from featuresql.serving.items import partition_key
    from featuresql.serving.push import MICROS, stream_sources
    from featuresql.serving.push_records import event_of, read_record, record_id
    from featuresql.serving.stream_items import encode_event, event_attribute, pushed_key

    (model,) = stream_sources(manifest)["cards.events"]
    stream = model.stream
    updates: dict[str, dict[str, str]] = {}
    for record in batch:
        values = read_record(record, stream.rows.source_types)
        identity = record_id(values, None)
        event = event_of(stream.rows, values, identity)
        assert event is not None
        tile = event.time // (3600 * MICROS)
        key = pushed_key(partition_key("spend", list(event.keys)), model.schema, tile)
        updates.setdefault(key, {})[event_attribute(identity)] = encode_event(
            event.time, event.inputs
        )
    return updates


def baseline(endpoint: str, table: str, batches: list[dict[str, dict[str, str]]]) -> float:
    import boto3

    clients = [
        boto3.session.Session().client("dynamodb", region_name=REGION, endpoint_url=endpoint)
        for _ in range(WORKERS)
    ]

    def update(args: tuple[int, str, dict[str, str]]) -> None:
        worker, key, attributes = args
        names = {f"#a{n}": name for n, name in enumerate(attributes)}
        values = {f":v{n}": {"S": value} for n, value in enumerate(attributes.values())}
        clients[worker].update_item(
            TableName=table,
            Key={"pk": {"S": key}},
            UpdateExpression="SET " + ", ".join(f"#a{n} = :v{n}" for n in range(len(names))),
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )

    started = time.perf_counter()
    with ThreadPoolExecutor(WORKERS) as pool:
        for updates in batches:
            list(
                pool.map(update, [(n % WORKERS, k, a) for n, (k, a) in enumerate(updates.items())])
            )
    return time.perf_counter() - started


def table_items(endpoint: str, table: str) -> dict[str, Any]:
    import boto3

    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    pages = client.get_paginator("scan").paginate(TableName=table)
    return {item["pk"]["S"]: item for page in pages for item in page["Items"]}


def copy_table_definition(endpoint: str, table: str) -> None:
    import boto3

    client = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint)
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def item_bytes(item: dict[str, Any]) -> int:
    def size(value: dict[str, Any]) -> int:
        ((kind, inner),) = value.items()
        return len(inner.encode()) if kind == "S" else len(str(inner))

    return sum(len(name.encode()) + size(value) for name, value in item.items())


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    isolated_aws_environment()
    ok = True
    print(f"machine: {machine_load()}")
    with (
        work_folder("featuresql-bench-push-", keep=args.keep) as folder,
        running_server("dynamodb", folder) as endpoint,
    ):
        project = folder / "p"
        write_project(project, endpoint)
        manifest = build(project)
        from featuresql.serving.handler import reader_for
        from featuresql.serving.push import push
        from featuresql.serving.tables import open_table

        # 1. push throughput
        pushed = records(args.records, 1)
        batches = [pushed[n : n + BATCH] for n in range(0, len(pushed), BATCH)]
        plans = [planned_updates(manifest, batch) for batch in batches]
        copy_table_definition(endpoint, "bench_push_baseline")
        warm = records(BATCH, 9)
        baseline(endpoint, "bench_push_baseline", [planned_updates(manifest, warm)])
        base_seconds = baseline(endpoint, "bench_push_baseline", plans)
        table = open_table(manifest.store)
        push(manifest, table, "cards.events", warm)
        started = time.perf_counter()
        for batch in batches:
            outcome = push(manifest, table, "cards.events", batch)
            if outcome.rejected or outcome.count("counted") != len(batch):
                print(f"FAIL: push rejected or dropped records: {outcome.rejected[:3]}")
                ok = False
        ours = time.perf_counter() - started
        theirs = {k: v for k, v in table_items(endpoint, "bench_push_baseline").items()}
        mine = {k: v for k, v in table_items(endpoint, "bench_push").items() if "#p" in k}
        if mine != theirs:
            print(
                f"FAIL: the pushed items differ from the baseline's "
                f"({len(mine)} vs {len(theirs)} items)"
            )
            ok = False
        ratio = (len(pushed) / ours) / (len(pushed) / base_seconds)
        print(
            f"\n1. push throughput, {len(pushed):,} records in batches of {BATCH} "
            f"({len(mine):,} items)"
        )
        print(f"   boto3 UpdateItem baseline {len(pushed) / base_seconds:10,.0f} records/s")
        print(
            f"   featuresql push           {len(pushed) / ours:10,.0f} records/s   "
            f"ratio {ratio:.2f}x "
            f"(target >= {TARGET_RATIO}x: {verdict(ratio >= TARGET_RATIO)})"
        )

        # 2. read latency of the busy entity
        reader = reader_for(manifest)
        now = time.time()
        request = {"features": ["spend"], "entities": [{"user_id": BUSY_USER}]}
        status, body = reader.answer(request)
        expected = json.loads(body)["results"][0]["features"]
        if status != 200 or expected["spend__count_7d"] < 900:
            print(f"FAIL: the busy entity reads {status} {body[:200]}")
            ok = False
        from featuresql.serving.items import MARKER_KEY, partition_key
        from featuresql.serving.stream_items import pushed_key
        from featuresql.serving.stream_reads import guessed_tiles

        state_key = partition_key("spend", [BUSY_USER])
        stream = manifest.models["spend"].stream
        keys = [
            MARKER_KEY,
            state_key,
            *(
                pushed_key(state_key, manifest.models["spend"].schema, t)
                for t in guessed_tiles(stream, int(now * 1e6))
            ),
        ]
        raw_client = table.client
        handler_ms, raw_ms = [], []
        for round_number in range(args.reads):
            first_handler = round_number % 2 == 0
            for which in ("handler", "raw") if first_handler else ("raw", "handler"):
                started = time.perf_counter()
                if which == "handler":
                    reader.answer(request)
                    handler_ms.append((time.perf_counter() - started) * 1000)
                else:
                    raw_client.batch_get_item(
                        RequestItems={"bench_push": {"Keys": [{"pk": {"S": k}} for k in keys]}}
                    )
                    raw_ms.append((time.perf_counter() - started) * 1000)
        handler_ms.sort()
        raw_ms.sort()
        p50 = percentile(handler_ms, 0.5) - percentile(raw_ms, 0.5)
        p99 = percentile(handler_ms, 0.99) - percentile(raw_ms, 0.99)
        print(f"\n2. 1-entity read of the busy history ({args.reads} reads)")
        print(
            f"   raw BatchGetItem   p50 {percentile(raw_ms, 0.5):6.2f} ms  "
            f"p99 {percentile(raw_ms, 0.99):6.2f} ms"
        )
        print(
            f"   reader handler     p50 {percentile(handler_ms, 0.5):6.2f} ms  "
            f"p99 {percentile(handler_ms, 0.99):6.2f} ms"
        )
        print(
            f"   overhead           p50 {p50:6.2f} ms  p99 {p99:6.2f} ms "
            f"(target <= {TARGET_OVERHEAD_MS} ms at p99: {verdict(p99 <= TARGET_OVERHEAD_MS)})"
        )

        # 3. push to read
        ok &= push_to_read(args, project, manifest, endpoint)

        # 4. item sizes
        items = table_items(endpoint, "bench_push")
        state = items[state_key]
        slots = json.loads(state["_st"]["S"])
        tiles = [item for key, item in items.items() if key.startswith(state_key + "#p")]
        print("\n4. item sizes of the busy entity (1,000 events in 7 days, 1-minute stream grain)")
        print(
            f"   state item {item_bytes(state):,} bytes: "
            f"{sum(k.startswith('c') for k in slots)} coarse and "
            f"{sum(k.startswith('f') for k in slots)} fine slots (DynamoDB's limit: 400 KB)"
        )
        for item in tiles:
            events = sum(name.startswith("e") for name in item)
            print(
                f"   pushed item {item['pk']['S'].rsplit('#', 1)[1]}: "
                f"{item_bytes(item):,} bytes, {events} events"
            )
    print("\nok" if ok else "\nFAILED")
    return 0 if ok else 1


def push_to_read(args: argparse.Namespace, project: Path, manifest: Any, endpoint: str) -> bool:
    """From a push's answer to the first read that counts it, through serve and the handlers."""
    import os

    from featuresql.serving import handler as reader_handler
    from featuresql.serving import push_handler

    ok = True
    manifest_file = project / "target" / "online" / "dev" / "manifest.json"
    os.environ.update(FEATURESQL_MANIFEST=str(manifest_file), FEATURESQL_PUSH_SOURCE="cards.events")
    serve = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from featuresql.cli.main import main; main()",
            "serve",
            "--port",
            "0",
        ],
        cwd=project,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        line = serve.stdout.readline() if serve.stdout else ""
        found = re.search(r"http://([\d.]+):(\d+)/", line)
        assert found, line
        connection = http.client.HTTPConnection(found[1], int(found[2]), timeout=30)
        paths: dict[str, list[float]] = {"serve": [], "handlers": []}
        request = {"features": ["spend"], "entities": [{"user_id": BUSY_USER}]}
        count = _count_via_http(connection, request)
        for number in range(args.latency_rounds):
            record = {
                "event_id": 5_000_000 + number,
                "user_id": BUSY_USER,
                "amount": "1.00",
                "ts": (B + timedelta(seconds=number % 60)).isoformat() + "Z",
            }
            for path in ("serve", "handlers"):
                record = {
                    **record,
                    "event_id": record["event_id"] + (10_000 if path == "handlers" else 0),
                }
                if path == "serve":
                    body = json.dumps({"source": "cards.events", "records": [record]})
                    connection.request("POST", "/push", body, {"Content-Type": "application/json"})
                    answer = connection.getresponse()
                    answer.read()
                    accepted = time.perf_counter()
                    while _count_via_http(connection, request) != count + 1:
                        pass
                else:
                    data = base64.b64encode(json.dumps(record).encode()).decode()
                    event = {
                        "Records": [
                            {
                                "eventSource": "aws:kinesis",
                                "kinesis": {"data": data, "sequenceNumber": "1"},
                            }
                        ]
                    }
                    push_handler.handler(event, None)
                    accepted = time.perf_counter()
                    while (
                        reader_handler.handler(request)["results"][0]["features"]["spend__count_1h"]
                        != count + 1
                    ):
                        pass
                paths[path].append(time.perf_counter() - accepted)
                count += 1
    finally:
        serve.terminate()
        serve.wait(10)
    print(f"\n3. push accepted -> first read that counts it ({args.latency_rounds} pushes each)")
    for path, seconds in paths.items():
        seconds.sort()
        p99 = percentile(seconds, 0.99)
        print(
            f"   {path:9s} p50 {percentile(seconds, 0.5) * 1000:7.2f} ms  p99 {p99 * 1000:7.2f} ms "
            f"(target < {TARGET_LATENCY_S} s: {verdict(p99 < TARGET_LATENCY_S)})"
        )
    return ok


def _count_via_http(connection: http.client.HTTPConnection, request: dict[str, Any]) -> int:
    connection.request(
        "POST", "/features", json.dumps(request), {"Content-Type": "application/json"}
    )
    response = connection.getresponse()
    return int(json.loads(response.read())["results"][0]["features"]["spend__count_1h"])


if __name__ == "__main__":
    sys.exit(main())
