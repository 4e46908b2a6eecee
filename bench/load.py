"""The reader under load: a bounded, closed-loop load generator on loopback, against dynalite.

    python bench/load.py                       # 20k entities; 50 clients x 30 s, each mode
    python bench/load.py --smoke               # 2k entities; 4 clients x 2 s: for CI
    python bench/load.py --clients 100 --seconds 60 --rate 500 --modes serve

1. **Set-up** (not timed). dynalite on a free loopback port (``tests/dynalite_server.py``; in
   memory), and a project in a temporary folder (``online_project``) with ``--entities`` users:
   ``featuresql run``, then ``run_sync`` of both online models (``wide``: 20 features;
   ``narrow``: 5, for the first 20k users) into a dynalite table through
   ``dynalite_store.BatchWriteStore`` (dynalite has no TransactWriteItems). The expected
   values are the models' rows in DuckDB.
2. **Load.** ``--clients`` clients, each sending its next request as soon as the previous
   one is answered (a closed loop: at most that many requests in flight), for ``--seconds``;
   ``--rate`` caps the total requests per second. Requests, drawn per client from a seeded
   generator: 50% POST of 1 entity, 30% POST of 10 entities, 20% GET of 10 entities, each
   asking for ``wide.f01``, ``wide.f11``, ``wide.f16`` and the whole of ``narrow``; one
   entity in 20 of the 10-entity requests does not exist (it reads as the defaults). Modes:
   - ``serve``: ``featuresql serve`` in a subprocess; the clients are threads, each with one
     keep-alive ``http.client`` connection (reopened after an error);
   - ``handler``: ``featuresql.serving.handler.handler`` called in this process by the client
     threads with a recorded API Gateway HTTP API (v2) event per request
     (``tests/events/apigw_v2.json`` and ``apigw_v2_get.json``, body or query string
     replaced), after one warm-up call, as a warm Lambda container would be.
3. **Check.** Every answer must be a 200 whose features equal the models' rows in DuckDB
   (doubles exactly; defaults for the missing entity) and whose feature timestamps are the
   rows' ``ts`` (null for the missing entity). Errors are counted by kind: an HTTP status, an
   exception (``ConnectionResetError``...), ``wrong values``.
4. **Report**, per mode: requests, clients, seconds, throughput, latency percentiles (ms,
   from sending the request to having read the whole answer; overall and per request
   kind), errors by kind; for ``serve`` also the server's peak RSS and thread count.

Clients, reader and dynalite share the machine (dynalite is one Node.js thread), so the
figures say how much load the reader holds on a laptop-sized box, not on AWS. Latency is
never a pass/fail criterion; the script exits 1 when any request errs or answers wrongly.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from harness import (
    TESTS,
    featuresql_command,
    fill_defaults,
    machine_load,
    percentile,
    process_status,
    split_list,
    work_folder,
)
from online_project import (
    MODEL,
    READ_ENTITIES,
    SECOND_FEATURES,
    SECOND_MODEL,
    build_project,
    dynamodb_settings,
    isolated_aws_environment,
    model_rows,
    running_server,
)

EVENTS = TESTS / "events"
MODES = ("serve", "handler")
WIDE_FEATURES = ("f01", "f11", "f16")  # BIGINT, rounded DOUBLE, full-precision DOUBLE
REQUESTED = [*(f"{MODEL}.{name}" for name in WIDE_FEATURES), SECOND_MODEL]
KINDS = {"post_1": 0.5, "post_10": 0.3, "get_10": 0.2}  # request kind -> share
MISSING_EVERY = 20  # one entity in 20 of the 10-entity requests does not exist
SERVE_START_SECONDS = 60.0
TIMEOUT_SECONDS = 30.0
SIZES = {"entities": (20_000, 2_000), "clients": (50, 4), "seconds": (30.0, 2.0)}  # full, smoke


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entities", type=int, help="default 20,000 (smoke: 2,000)")
    parser.add_argument("--clients", type=int, help="concurrent clients: 50 (smoke: 4)")
    parser.add_argument("--seconds", type=float, help="of load, per mode: 30 (smoke: 2)")
    parser.add_argument("--rate", type=float, default=0.0, help="requests/s cap, 0: none")
    parser.add_argument("--modes", default=",".join(MODES), help="serve,handler or one of them")
    parser.add_argument("--workers", type=int, default=4, help="sync's writer threads")
    parser.add_argument("--smoke", action="store_true", help="2k entities, 4 clients x 2 s")
    parser.add_argument("--json", type=Path, help="write a summary here")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    fill_defaults(
        args, {name: smoke if args.smoke else full for name, (full, smoke) in SIZES.items()}
    )
    args.modes = split_list(args.modes)
    unknown = set(args.modes) - set(MODES)
    if unknown or args.entities < 10 or args.clients < 1:
        parser.error(f"--modes takes {', '.join(MODES)}; at least 10 entities and 1 client")
    return args


# -- requests and their expected answers ------------------------------------------------------


@dataclass(frozen=True)
class Request:
    kind: str
    keys: list[int]

    def body(self) -> str:
        return json.dumps({"entities": {"user_id": self.keys}, "features": REQUESTED})

    def query(self) -> str:
        return urlencode(
            {"user_id": ",".join(map(str, self.keys)), "features": ",".join(REQUESTED)}
        )


class Expected:
    """The answer every request must get, from the models' rows in DuckDB."""

    def __init__(self, context: Any, entities: int):
        wide = {row["user_id"]: row for row in model_rows(context, MODEL)}
        narrow = {row["user_id"]: row for row in model_rows(context, SECOND_MODEL)}
        self.universe = min(entities, READ_ENTITIES)  # users both models hold
        self.missing = entities + 1  # a user neither holds
        self.features: dict[int, dict[str, Any]] = {}
        self.stamps: dict[int, dict[str, str | None]] = {}
        for user in range(1, self.universe + 1):
            values = {f"{MODEL}__{name}": wide[user][name] for name in WIDE_FEATURES}
            values |= {f"{SECOND_MODEL}__{name}": narrow[user][name] for name in SECOND_FEATURES}
            self.features[user] = values
            rows = {MODEL: wide[user], SECOND_MODEL: narrow[user]}
            self.stamps[user] = {model: iso(row["ts"]) for model, row in rows.items()}
        self.defaults = dict.fromkeys(self.features[1])  # snapshot models: all NULL
        self.stamps[self.missing] = dict.fromkeys((MODEL, SECOND_MODEL))

    def draw(self, generator: random.Random) -> Request:
        kind = generator.choices(list(KINDS), weights=list(KINDS.values()))[0]
        count = 1 if kind == "post_1" else 10
        keys = [generator.randint(1, self.universe) for _ in range(count)]
        if count > 1:
            keys = [self.missing if generator.randrange(MISSING_EVERY) == 0 else k for k in keys]
        return Request(kind, keys)

    def wrong(self, request: Request, answer: dict[str, Any]) -> str | None:
        """None when ``answer`` is right, else what is wrong."""
        results = answer.get("results")
        if not isinstance(results, list) or len(results) != len(request.keys):
            return f"{len(results or [])} results for {len(request.keys)} entities"
        for key, result in zip(request.keys, results, strict=True):
            exists = key != self.missing
            if result.get("entity") != {"user_id": key}:
                return f"entity {result.get('entity')} for {key}"
            if result.get("features") != (self.features[key] if exists else self.defaults):
                return f"features of {key}: {result.get('features')}"
            if result.get("feature_timestamps") != self.stamps[key]:
                return f"feature timestamps of {key}: {result.get('feature_timestamps')}"
        return None


def iso(moment: datetime) -> str:
    """A model's ``ts`` (naive UTC, whole seconds here) as the reader writes it."""
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# -- the load loop ------------------------------------------------------------------------------


@dataclass
class Tally:
    """One client's (then the run's) outcomes."""

    latencies: dict[str, list[float]] = field(default_factory=dict)  # kind -> seconds
    errors: Counter[str] = field(default_factory=Counter)
    first_errors: list[str] = field(default_factory=list)

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.first_errors) < 5:
            self.first_errors.append(f"{kind}: {detail[:300]}")

    def merge(self, other: Tally) -> None:
        for kind, values in other.latencies.items():
            self.latencies.setdefault(kind, []).extend(values)
        self.errors.update(other.errors)
        self.first_errors.extend(other.first_errors[: max(0, 5 - len(self.first_errors))])


# send(request) -> (status, body text); raises on a transport failure
Sender = Callable[[Request], tuple[int, str]]


def client_loop(
    send: Sender,
    expected: Expected,
    seed: int,
    deadline: float,
    pace: tuple[float, float],
    tally: Tally,
) -> None:
    """Requests until ``deadline``: back to back, or at most one per ``pace`` = (first start,
    interval) when the interval is not 0."""
    generator = random.Random(seed)
    next_start, interval = pace
    while True:
        if interval:
            time.sleep(max(0.0, next_start - time.perf_counter()))
            next_start += interval
        if time.perf_counter() >= deadline:
            return
        request = expected.draw(generator)
        started = time.perf_counter()
        try:
            status, body = send(request)
        except Exception as exc:  # counted, never fatal: the point is to see them
            tally.latencies.setdefault(request.kind, []).append(time.perf_counter() - started)
            tally.error(type(exc).__name__, str(exc))
            continue
        tally.latencies.setdefault(request.kind, []).append(time.perf_counter() - started)
        if status != 200:
            tally.error(f"status {status}", body)
            continue
        try:
            problem = expected.wrong(request, json.loads(body))
        except (ValueError, AttributeError, TypeError) as exc:
            problem = f"unreadable answer ({exc}): {body}"
        if problem:
            tally.error("wrong values", problem)


def run_load(
    senders: list[Sender], expected: Expected, seconds: float, rate: float
) -> tuple[Tally, float]:
    """One thread per sender; the merged tally and the wall time."""
    interval = len(senders) / rate if rate else 0.0
    tallies = [Tally() for _ in senders]
    started = time.perf_counter()
    deadline = started + seconds
    threads = []
    for seed, (send, tally) in enumerate(zip(senders, tallies, strict=True)):
        pace = started + interval * seed / len(senders), interval  # first starts spread out
        arguments = send, expected, seed, deadline, pace, tally
        threads.append(threading.Thread(target=client_loop, args=arguments))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    total = Tally()
    for tally in tallies:
        total.merge(tally)
    return total, wall


# -- the two modes ------------------------------------------------------------------------------


class HttpClient:
    """One keep-alive connection to ``featuresql serve``, reopened after a failure."""

    def __init__(self, port: int):
        self.port = port
        self.connection: http.client.HTTPConnection | None = None

    def __call__(self, request: Request) -> tuple[int, str]:
        if self.connection is None:
            self.connection = http.client.HTTPConnection(
                "127.0.0.1", self.port, timeout=TIMEOUT_SECONDS
            )
        try:
            if request.kind.startswith("get"):
                self.connection.request("GET", f"/features?{request.query()}")
            else:
                headers = {"Content-Type": "application/json"}
                self.connection.request("POST", "/features", body=request.body(), headers=headers)
            response = self.connection.getresponse()
            body = response.read().decode()
        except Exception:
            self.connection.close()
            self.connection = None
            raise
        if response.will_close:
            self.connection.close()
            self.connection = None
        return response.status, body

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def start_serve(project: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    """``featuresql serve --port 0`` in a subprocess; the process and the port it took."""
    command = [*featuresql_command(), "--project-dir", str(project), "serve", "--port", "0"]
    log = log_path.open("wb")
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + SERVE_START_SECONDS
    while time.monotonic() < deadline and process.poll() is None:
        text = log_path.read_text(errors="replace")
        if "/features" in text:
            return process, int(text.split("http://127.0.0.1:", 1)[1].split("/", 1)[0])
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"featuresql serve did not start: {log_path.read_text(errors='replace')}")


def serve_mode(args: argparse.Namespace, project: Path, expected: Expected) -> dict[str, Any]:
    process, port = start_serve(project, project / "serve.log")
    try:
        clients = [HttpClient(port) for _ in range(args.clients)]
        tally, wall = run_load(clients, expected, args.seconds, args.rate)
        status = process_status(process.pid)  # the clients' connections still open
        server = {"peak_rss": status["VmHWM"], "threads": status["Threads"]}
        for client in clients:
            client.close()
        alive = process.poll() is None
    finally:
        process.terminate()
        process.wait(timeout=10)
    if not alive:
        tally.error("server exited", (project / "serve.log").read_text(errors="replace"))
    return {**summarize(tally, wall, args), "server": server}


def handler_mode(args: argparse.Namespace, manifest: Path, expected: Expected) -> dict[str, Any]:
    from featuresql.serving import handler as lambda_handler

    os.environ["FEATURESQL_MANIFEST"] = str(manifest)
    post = json.loads((EVENTS / "apigw_v2.json").read_text())
    get = json.loads((EVENTS / "apigw_v2_get.json").read_text())

    def invoke(request: Request) -> tuple[int, str]:
        if request.kind.startswith("get"):
            event = {**get, "rawQueryString": request.query(), "queryStringParameters": None}
        else:
            event = {**post, "body": request.body()}
        response = lambda_handler.handler(event)
        return response["statusCode"], response["body"]

    warm_up = Request("post_1", [1])
    status, body = invoke(warm_up)  # the container's first request builds the reader
    if status != 200 or expected.wrong(warm_up, json.loads(body)):
        raise RuntimeError(f"the handler's first answer is wrong: {status} {body[:300]}")
    tally, wall = run_load([invoke] * args.clients, expected, args.seconds, args.rate)
    return summarize(tally, wall, args)


# -- report -------------------------------------------------------------------------------------


def latency_figures(seconds: list[float]) -> dict[str, float]:
    ordered = sorted(seconds)
    figures = {f"p{int(q * 100)}": percentile(ordered, q) * 1000 for q in (0.5, 0.9, 0.99)}
    return {"requests": len(ordered), **figures, "max": (ordered[-1] * 1000 if ordered else 0.0)}


def summarize(tally: Tally, wall: float, args: argparse.Namespace) -> dict[str, Any]:
    every = [value for values in tally.latencies.values() for value in values]
    return {
        "requests": len(every),
        "clients": args.clients,
        "seconds": wall,
        "throughput": len(every) / wall,
        "latency_ms": {
            "all": latency_figures(every),
            **{kind: latency_figures(tally.latencies.get(kind, [])) for kind in KINDS},
        },
        "errors": dict(tally.errors),
        "first_errors": tally.first_errors,
    }


def print_mode(mode: str, figures: dict[str, Any]) -> None:
    rate = f"{figures['throughput']:,.0f} requests/s"
    print(
        f"  {figures['requests']:,} requests from {figures['clients']} clients in "
        f"{figures['seconds']:.1f}s: {rate}"
    )
    print(f"  {'latency, ms':12s} {'requests':>9s} {'p50':>7s} {'p90':>7s} {'p99':>7s} {'max':>7s}")
    for kind, row in figures["latency_ms"].items():
        print(
            f"  {kind:12s} {row['requests']:>9,} {row['p50']:7.1f} {row['p90']:7.1f} "
            f"{row['p99']:7.1f} {row['max']:7.1f}"
        )
    errors = figures["errors"]
    text = ", ".join(f"{kind}: {count:,}" for kind, count in sorted(errors.items())) or "none"
    print(f"  errors: {text} (every answer checked against DuckDB)")
    for detail in figures["first_errors"]:
        print(f"    {detail}")
    if "server" in figures:
        server = figures["server"]
        print(f"  server: peak RSS {server['peak_rss']}, {server['threads']} threads at the end")


# -- set-up and main ----------------------------------------------------------------------------


def set_up(args: argparse.Namespace, project: Path, endpoint_url: str) -> tuple[Path, Expected]:
    """The project, synced to dynalite; the manifest's path and the expected answers."""
    from featuresql.online.stores import manifest_path
    from featuresql.online.sync import run_sync

    from dynalite_store import open_batch_write_store

    started = time.perf_counter()
    online = dynamodb_settings(endpoint_url, args.workers)
    context = build_project(project, online, args.entities)
    result = run_sync(context, store=open_batch_write_store(context))
    synced = {model.model: model.written for model in result.models}
    wanted = {MODEL: args.entities, SECOND_MODEL: min(args.entities, READ_ENTITIES)}
    if synced != wanted:
        raise RuntimeError(f"sync wrote {synced}, expected {wanted}")
    expected = Expected(context, args.entities)
    manifest = manifest_path(context)
    context.close()  # `featuresql serve` opens the project itself
    items = sum(synced.values())
    print(
        f"set-up: {args.entities:,} entities, {items:,} items synced to dynalite in "
        f"{time.perf_counter() - started:.1f}s"
    )
    return manifest, expected


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    isolated_aws_environment()
    with work_folder("featuresql-bench-load-", keep=args.keep) as folder:
        print(machine_load())
        summary: dict[str, Any] = {"entities": args.entities, "rate": args.rate}
        with running_server("dynalite", folder) as endpoint_url:
            manifest, expected = set_up(args, folder / "project", endpoint_url)
            for mode in args.modes:
                cap = f", at most {args.rate:,.0f} requests/s" if args.rate else ""
                print(f"\n{mode}: {args.clients} clients x {args.seconds:.0f} s, closed loop{cap}")
                if mode == "serve":
                    summary[mode] = serve_mode(args, folder / "project", expected)
                else:
                    summary[mode] = handler_mode(args, manifest, expected)
                print_mode(mode, summary[mode])
        errors = sum(sum(summary[mode]["errors"].values()) for mode in args.modes)
        if args.json:
            args.json.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"\n{errors:,} error(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
