"""The `featuresql` command: thin wrappers that parse, call the core and print.

One error handler turns a FeaturesqlError into a red one-line message and its
exit code (2 for usage and configuration, 1 for model failures); a traceback is
printed only with --debug.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import threading
import traceback
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import click

from featuresql.cli.options import TIMES, project_options, selection_options, with_options
from featuresql.errors import EXIT_MODEL_FAILURE, EXIT_USAGE, ConfigError, FeaturesqlError

F = TypeVar("F", bound=Callable[..., Any])


def _handle_errors(func: F) -> F:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            return func(*args, **kwargs)
        except FeaturesqlError as exc:
            if debug:
                traceback.print_exc()
            click.secho(f"Error: {exc.one_line()}", fg="red", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.secho("Interrupted.", fg="red", err=True)
            sys.exit(130)

    return wrapper  # type: ignore[return-value]


def _parse_vars(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    import yaml

    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = None
    if not isinstance(value, dict):
        raise click.BadParameter(
            "expected a YAML or JSON mapping, e.g. '{start_date: 2024-01-01}'", param_hint="'--vars'"
        )
    return value


@contextmanager
def _context(obj: dict[str, Any], target: str | None = None, *, offline: bool = False) -> Iterator[Any]:
    """The project on its target, with the project folder as the working directory meanwhile:
    a relative path in a hook or model (``read_parquet('data/x.parquet')``, ``COPY ... TO``)
    is the project's, whatever folder the command was typed in. Paths given on the command
    line are made absolute before (``_absolute``)."""
    from featuresql.context import Context

    context = Context(obj["project_dir"], target=target or obj["target"], variables=obj["vars"], offline=offline)
    typed_in = Path.cwd()
    os.chdir(context.project.root)
    try:
        with context:
            yield context
    finally:
        os.chdir(typed_in)


def _absolute(obj: dict[str, Any], path: str, *, table_prefix: str | None = None, files: tuple[str, ...] = ()) -> str:
    """A command-line path made absolute against the current folder, when the command will run in
    another (the project's); as typed otherwise, and for a warehouse table name (``table:NAME``,
    or a spine without a file suffix)."""
    from featuresql.project.loader import find_project_root

    if table_prefix and path.startswith(table_prefix):
        return path
    if files and not path.lower().endswith(files):
        return path
    try:
        if find_project_root(Path(obj["project_dir"])) == Path.cwd().resolve():
            return path  # the command runs here: errors quote the path as typed
    except FeaturesqlError:
        return path  # no project: the context's own error says so
    return str(Path(path).expanduser().absolute())


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="featuresql")
@click.option(
    "--project-dir", default=".", type=click.Path(file_okay=False, exists=True), help="Project folder (default: here)."
)
@click.option("--target", "-t", default=None, help="Target in profiles.yml.")
@click.option("--vars", "variables", default=None, help="Project vars as YAML/JSON, e.g. '{demo_days: 30}'.")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.pass_context
def cli(ctx: click.Context, project_dir: str, target: str | None, variables: str | None, debug: bool) -> None:
    """featuresql: SQL feature models compiled for DuckDB, Snowflake and BigQuery."""
    ctx.obj = {"project_dir": project_dir, "target": target, "vars": _parse_vars(variables)}


@cli.command()
@click.argument("name")
@click.option(
    "--from",
    "from_file",
    type=click.Path(path_type=Path),
    default=None,
    help="An events file (.parquet, .csv, .json) to build the project over: its columns become the source.",
)
@click.option("--entity", default=None, help="With --from: the entity key column (e.g. user_id).")
@click.option("--timestamp", default=None, help="With --from: the event time column.")
@click.option("--windows", default="7d,30d", show_default=True, help="With --from: the first model's windows.")
@click.option("--grain", default="1d", show_default=True, help="With --from: how often window values are computed.")
@_handle_errors
def init(
    name: str, from_file: Path | None, entity: str | None, timestamp: str | None, windows: str, grain: str
) -> None:
    """Create a new project folder NAME that runs as is (over your own events file with --from)."""
    if from_file is None:
        from featuresql.project.scaffold import create_project

        if entity or timestamp:
            raise ConfigError("--entity and --timestamp go with --from FILE (an events file)")
        path = create_project(Path(name))
        click.echo(f"Created project {path.name} in {path}. Next: cd {name} && featuresql run")
        return
    from featuresql.project.file_scaffold import create_project_from_file, read_events_file

    if not entity or not timestamp:
        raise ConfigError("--from needs --entity COLUMN and --timestamp COLUMN (the entity key and the event time)")
    events = read_events_file(from_file)
    path, model, source = create_project_from_file(
        Path(name), events, entity, timestamp, [w.strip() for w in windows.split(",") if w.strip()], grain
    )
    click.echo(
        f"Created project {path.name} in {path}: source {source} reads {from_file} in place "
        f"({len(events.columns)} columns), model {model} computes its windows."
    )
    click.echo(f"Next: featuresql --project-dir {name} run")


@cli.command("compile")
@with_options(project_options + selection_options)
@click.pass_obj
@_handle_errors
def compile_command(obj: dict[str, Any], target: str | None, select: tuple[str, ...], exclude: tuple[str, ...]) -> None:
    """Render and validate models; write the SQL a run executes to target/compiled/ (no connection)."""
    with _context(obj, target, offline=True) as context:
        selected = context.select(select, exclude)
        paths = context.write_compiled(selected)
        for path in paths:
            click.echo(f"  {path.relative_to(context.project.root)}")
        click.secho(f"Compiled {len(paths)} models for target {context.target_name} ({context.dialect}).", fg="green")


@cli.command()
@with_options(project_options + selection_options)
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1, 64), help="Models built in parallel.")
@click.option("--full-refresh", is_flag=True, help="Rebuild the selected models from their start.")
@click.option("--start", type=TIMES, default=None, help="Backfill from this UTC time (with --end: exactly that range).")
@click.option("--end", type=TIMES, default=None, help="Backfill up to this UTC time (exclusive).")
@click.option("--dry-run", is_flag=True, help="Print the intervals and statements a run would execute; run nothing.")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", help="json: one object per event.")
@click.option("--lock-timeout", type=click.FloatRange(0), default=0.0, help="Seconds to wait for another run.")
@click.option("--now", "now", type=TIMES, default=None, help="Run as if it were this UTC time (replays, tests).")
@click.pass_obj
@_handle_errors
def run(
    obj: dict[str, Any],
    target: str | None,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    threads: int,
    full_refresh: bool,
    start: datetime | None,
    end: datetime | None,
    dry_run: bool,
    log_format: str,
    lock_timeout: float,
    now: datetime | None,
) -> None:
    """Build the selected models in dependency order, incrementally."""
    from featuresql.cli.output import JsonRunLog, RunPrinter, print_plan
    from featuresql.run.planning import RunOptions

    if full_refresh and (start or end):
        raise click.UsageError("--full-refresh rebuilds everything: it cannot be combined with --start/--end")
    if start and end and end <= start:
        raise click.UsageError("--end must be after --start")
    options = RunOptions(full_refresh=full_refresh, start=start, end=end)
    with _context(obj, target) as context:
        if dry_run:
            print_plan(context.plan(select, exclude, now=now, options=options), context.dialect)
            return
        printer = JsonRunLog() if log_format == "json" else RunPrinter()
        if log_format == "text":
            click.echo(f"Running {context.project.name} on target {context.target_name} ({context.adapter.describe()})")
        result = context.run(
            select,
            exclude,
            threads=threads,
            now=now,
            options=options,
            report=printer,
            on_batch=printer.batch,
            lock_timeout=lock_timeout,
        )
        printer.summary(result)
        if not result.ok:
            sys.exit(EXIT_MODEL_FAILURE)


@cli.command()
@with_options(project_options)
@click.option("--spine", required=True, help="Warehouse table, or a local .parquet/.csv file.")
@click.option("--features", "-f", "features", multiple=True, help="model or model.feature, comma-separated.")
@click.option("--service", default=None, help="A feature service (NAME or NAME@VERSION) instead of --features.")
@click.option("--out", "-o", required=True, help="A .parquet or .csv file, or table:NAME in the warehouse.")
@click.option("--timestamp-column", default=None, help="The spine's time column (default: found by name).")
@click.option("--strict", is_flag=True, help="Fail on spine rows past what a model has computed (else NULL, counted).")
@click.pass_obj
@_handle_errors
def extract(
    obj: dict[str, Any],
    target: str | None,
    spine: str,
    features: tuple[str, ...],
    service: str | None,
    out: str,
    timestamp_column: str | None,
    strict: bool,
) -> None:
    """Join features onto a spine as of each row's time (a leak-free training set)."""
    _features_or_service(features, service)
    spine = _absolute(obj, spine, files=(".parquet", ".csv"))
    out = _absolute(obj, out, table_prefix="table:")
    with _context(obj, target) as context:
        result = context.extract(
            spine, features, out=out, timestamp_column=timestamp_column, strict=strict, service=service
        )
        for warning in result.warnings:
            click.secho(f"Warning: {warning}", fg="yellow", err=True)
        click.secho(
            f"Extracted {result.rows:,} rows with {_plural(result.features, 'feature')} from "
            f"{_plural(result.models, 'model')} "
            f"to {result.destination.describe()} in {result.seconds:.2f}s.",
            fg="green",
        )


@cli.command()
@with_options(project_options + selection_options)
@click.option("--now", "now", type=TIMES, default=None, help="Sync the values available at this UTC time.")
@click.option("--lock-timeout", type=click.FloatRange(0), default=0.0, help="Seconds to wait for a busy target.")
@click.option("--full", is_flag=True, help="Resend every current item and sweep the store, as for a new store.")
@click.option("--repair", is_flag=True, help="Read the store back; rewrite what is missing, stale or different.")
@click.option("--sample", type=click.IntRange(1), default=None, help="With --repair: only the N newest entities.")
@click.option("--dry-run", is_flag=True, help="Count the items a sync would write and delete; change nothing.")
@click.pass_obj
@_handle_errors
def sync(
    obj: dict[str, Any],
    target: str | None,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    now: datetime | None,
    lock_timeout: float,
    full: bool,
    repair: bool,
    sample: int | None,
    dry_run: bool,
) -> None:
    """Make the online store hold the online models' current values: write and delete what changed."""
    from featuresql.online.sync import ModelSync, preview_sync, run_sync

    if dry_run:
        if repair:
            raise click.BadParameter("--repair reads the store back: it has no dry run", param_hint="--dry-run")
        with _context(obj, target) as context:
            preview = preview_sync(context, select, exclude, now=now, full=full)
        click.echo(f"Would sync to {preview.store} (dry run: nothing written)")
        if preview.restart:
            click.secho(f"  {preview.restart}, and delete every other item the store holds", fg="yellow")
        for name in preview.removed:
            click.secho(f"  {name} is no longer online: its items would be deleted", fg="yellow")
        for name, (puts, deletes) in preview.changes.items():
            click.echo(f"  {name:<28} {puts:>9,} to write {deletes:>7,} to delete")
        return

    if sample is not None and not repair:
        raise click.BadParameter("--sample goes with --repair", param_hint="--sample")
    if full and repair:
        raise click.BadParameter("--full resends everything already: drop --repair", param_hint="--repair")

    def report(model: ModelSync) -> None:
        click.echo(
            f"  {model.model:<28} {model.changed:>9,} changed {model.written:>9,} written "
            f"{model.deleted:>7,} deleted {model.skipped:>6,} kept newer  {model.seconds:6.2f}s"
        )
        if model.repair is not None:
            click.echo(f"  {'':<28} {model.repair.describe()}")

    def notice(line: str) -> None:
        click.secho(f"  {line}", fg="yellow")

    with _context(obj, target) as context:
        click.echo(f"Syncing online models of {context.project.name} (target {context.target_name})")
        result = run_sync(
            context,
            select,
            exclude,
            now=now,
            report=report,
            lock_timeout=lock_timeout,
            full=full,
            notice=notice,
            repair=repair,
            sample=sample,
        )
        written = sum(model.written for model in result.models)
        deleted = sum(model.deleted for model in result.models) + result.swept
        click.secho(
            f"Synced {_plural(len(result.models), 'model')} to {result.store}: "
            f"{_plural(written, 'item')} written, {deleted:,} deleted (sync {result.version}).",
            fg="green",
        )


@cli.command("test")
@with_options(project_options + selection_options)
@click.option("--fail-fast", "-x", is_flag=True, help="Stop at the first failure or error.")
@click.option("--online", is_flag=True, help="Also compare a sample of the online store with the warehouse.")
@click.option("--sample", default=100, show_default=True, type=click.IntRange(1), help="Entities per online model.")
@click.option("--now", "now", type=TIMES, default=None, help="Judge freshness and the online store at this UTC time.")
@click.pass_obj
@_handle_errors
def test_command(
    obj: dict[str, Any],
    target: str | None,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    fail_fast: bool,
    online: bool,
    sample: int,
    now: datetime | None,
) -> None:
    """Run data tests, unit tests, freshness and point-in-time checks (-s test_type:unit|data ...)."""
    _run_tests(
        obj, target, select, exclude, command="test", fail_fast=fail_fast, online=online, online_sample=sample, now=now
    )


@cli.command()
@with_options(project_options + selection_options)
@click.option("--now", "now", type=TIMES, default=None, help="Judge freshness at this UTC time.")
@click.pass_obj
@_handle_errors
def freshness(
    obj: dict[str, Any], target: str | None, select: tuple[str, ...], exclude: tuple[str, ...], now: datetime | None
) -> None:
    """Check how old the newest rows of sources (and models) with freshness: are (-s source:bank)."""
    _run_tests(obj, target, select, exclude, command="freshness", only_kind="freshness", now=now)


def _run_tests(
    obj: dict[str, Any],
    target: str | None,
    select: tuple[str, ...],
    exclude: tuple[str, ...],
    *,
    command: str,
    **options: Any,
) -> None:
    from featuresql.testing.printer import TestPrinter
    from featuresql.testing.runner import test_project

    printer = TestPrinter()
    debug = click.get_current_context().find_root().params.get("debug", False)
    with _context(obj, target) as context:

        def announce(count: int) -> None:
            click.echo(f"Testing {context.project.name} on target {context.target_name}: {_plural(count, 'test')}")

        run = test_project(
            context, select, exclude, report=printer, announce=announce, command=command, debug=debug, **options
        )
    printer.summary(run)
    if not run.ok:
        sys.exit(EXIT_MODEL_FAILURE)


@cli.command()
@with_options(project_options)
@click.argument("keys", nargs=-1, metavar="KEY=VALUE...")
@click.option("--features", "-f", "features", multiple=True, help="model or model.feature, comma-separated.")
@click.option("--service", default=None, help="A feature service (NAME or NAME@VERSION) instead of --features.")
@click.option(
    "--now", "now", type=TIMES, default=None, help="Read as at this UTC time (expiry; never earlier than the items)."
)
@click.pass_obj
@_handle_errors
def read(
    obj: dict[str, Any],
    target: str | None,
    keys: tuple[str, ...],
    features: tuple[str, ...],
    service: str | None,
    now: datetime | None,
) -> None:
    """Read online features as a service would: featuresql read user_id=1 -f user_transactions.

    Several entities: user_id=1,2 for integer keys; repeat a string key (account_id=a account_id=b),
    whose value is taken whole, commas included. On-demand features take their request columns the
    same way: featuresql read user_id=42 advance_amount=150.00 -f advance_request.
    """
    from featuresql.online.stores import check_readable, read_manifest
    from featuresql.serving.handler import reader_for

    _features_or_service(features, service)
    parameters: dict[str, list[str]] = {"features": list(features)} if features else {}
    if service is not None:
        name, _, version = service.partition("@")
        parameters |= {"service": [name.lower()], **({"version": [version]} if version else {})}
    for pair in keys:
        name, separator, value = pair.partition("=")
        if not separator:
            raise click.BadParameter(f"{pair!r}: give entity keys as KEY=VALUE, e.g. user_id=1", param_hint="KEYS")
        parameters.setdefault(name, []).append(value)
    with _context(obj, target, offline=True) as context:
        manifest = read_manifest(context)
        if service is not None:
            _check_served(context, manifest, service)
    check_readable(manifest)
    reader = reader_for(manifest)
    if now is not None:
        moment = now.replace(tzinfo=UTC).timestamp()
        reader.clock = lambda: moment
        reader.strict_time = True  # the store holds the present: refuse to pass it off as the past
    status, body = reader.answer_query(parameters)
    if status != 200:
        message = json.loads(body)["error"]["message"]
        click.secho(f"Error: {message}", fg="red", err=True)
        sys.exit(EXIT_USAGE)
    click.echo(body)  # exactly what a service receives (decimals digit for digit)


@cli.command()
@with_options(project_options)
@click.argument("source")
@click.argument("file", metavar="FILE|-")
@click.pass_obj
@_handle_errors
def push(obj: dict[str, Any], target: str | None, source: str, file: str) -> None:
    """Push records of a source table online: featuresql push bank.transactions events.jsonl.

    FILE is JSON lines (or - for standard input), CSV with a header, or parquet. Every stream
    model reading SOURCE counts them in its next read; a bad record is rejected with its reason
    and the rest still apply (exit code 2 when any was rejected).
    """
    from featuresql.online.push_files import read_records
    from featuresql.online.stores import check_readable, read_manifest
    from featuresql.serving.push import PushError, StaleDefinition
    from featuresql.serving.push import push as push_records
    from featuresql.serving.tables import open_table

    records, text = read_records(file)
    with _context(obj, target, offline=True) as context:
        manifest = read_manifest(context)
    check_readable(manifest)
    try:
        outcome = push_records(manifest, open_table(manifest.store), source, records, text=text)
    except (PushError, StaleDefinition) as exc:
        raise ConfigError(str(exc)) from None
    accepted = len(records) - len(outcome.rejected)
    click.echo(
        f"Pushed {accepted:,} of {len(records):,} records of {source}: {outcome.count('counted'):,} events counted, "
        f"{outcome.count('late'):,} older than the last sync (left to the warehouse), "
        f"{outcome.count('filtered'):,} dropped by the models' SQL"
    )
    for number, reason in outcome.rejected:
        click.secho(f"record {number + 1}: rejected: {reason}", fg="red", err=True)
    if outcome.rejected:
        sys.exit(EXIT_USAGE)


@cli.command()
@with_options(project_options)
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="0: any free port.")
@click.pass_obj
@_handle_errors
def serve(obj: dict[str, Any], target: str | None, host: str, port: int) -> None:
    """Serve online features over HTTP with the Lambda reader (POST /features)."""
    from featuresql.online.stores import check_readable, read_manifest
    from featuresql.serving.handler import reader_for
    from featuresql.serving.http import make_server

    with _context(obj, target, offline=True) as context:
        manifest = read_manifest(context)
    check_readable(manifest)
    try:
        server = make_server(reader_for(manifest), host, port)
    except OSError as exc:
        raise FeaturesqlError(f"cannot listen on {host}:{port}: {exc.strerror}: pass --port") from None
    host_name, bound_port = server.server_address[:2]
    address = f"http://{host_name!s}:{bound_port}"
    click.echo(
        f"Serving {', '.join(manifest.models)} from the {manifest.store['type']} store on {address}/features "
        "(Ctrl-C stops)",
        err=False,
    )
    try:
        server.serve_forever()
    finally:
        server.server_close()


@cli.command("package-lambda")
@with_options(project_options)
@click.option("--out", "-o", default="dist/reader.zip", show_default=True, type=click.Path(dir_okay=False))
@click.option("--service", default=None, help="Serve only this feature service (NAME or NAME@VERSION).")
@click.option("--push", "push_source", default=None, metavar="SOURCE", help="The push Lambda of this source table.")
@click.pass_obj
@_handle_errors
def package_lambda_command(
    obj: dict[str, Any], target: str | None, out: str, service: str | None, push_source: str | None
) -> None:
    """Build the Lambda reader's zip (handler featuresql.serving.handler.handler) and its IAM policy.

    With --push SOURCE, the push Lambda of that source (handler featuresql.serving.push_handler.handler),
    for a Kinesis stream, an SQS queue or API Gateway.
    """
    from featuresql.online.packaging import HANDLER, PUSH_HANDLER, package_lambda
    from featuresql.online.stores import current_manifest, service_manifest

    if service is not None and push_source is not None:
        raise ConfigError("--push packages the push Lambda, which serves no service: give --service or --push")
    out = _absolute(obj, out)
    with _context(obj, target) as context:  # the project as it is now: no sync needed first
        manifest = current_manifest(context)
        if service is not None:
            context.service(service)  # an unknown service or version is an error naming it
            manifest = service_manifest(manifest, context.compiled.services, service, context.compiled.on_demand)
        archive, policy = package_lambda(manifest, Path(out), push_source)
    handler = PUSH_HANDLER if push_source is not None else HANDLER
    click.secho(f"Wrote {archive} (handler {handler}) and {policy}.", fg="green")


@cli.group()
def docs() -> None:
    """A static catalog site of the project: `docs generate`, then `docs serve`."""


@docs.command("generate")
@with_options(project_options)
@click.pass_obj
@_handle_errors
def docs_generate(obj: dict[str, Any], target: str | None) -> None:
    """Write the catalog site to target/docs/ (index.html, catalog.json); reads the warehouse if it is built."""
    from featuresql.docs.generate import generate_docs

    result = generate_docs(obj["project_dir"], target or obj["target"], obj["vars"])
    for note in (result.warehouse_note, *result.notes):
        if note:
            click.secho(f"  {note}", fg="yellow")
    click.secho(
        f"Wrote {_shown(result.index)} and {result.catalog.name}: {_plural(result.models, 'model')}, "
        f"{_plural(result.features, 'feature')}, {_plural(result.sources, 'source table')}. "
        "Open it, or run `featuresql docs serve`.",
        fg="green",
    )


@docs.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(0, 65535), help="0: any free port.")
@click.pass_obj
@_handle_errors
def docs_serve(obj: dict[str, Any], host: str, port: int) -> None:
    """Serve target/docs/ over HTTP (write it first with `featuresql docs generate`)."""
    from featuresql.docs.server import make_docs_server, server_url
    from featuresql.docs.site import DOCS_FOLDER
    from featuresql.project.loader import find_project_root, load_project

    project = load_project(find_project_root(Path(obj["project_dir"])))
    server = make_docs_server(project.target_dir / DOCS_FOLDER, host, port)
    click.echo(f"Serving the docs of {project.name} on {server_url(server)} (Ctrl-C stops)")
    try:
        server.serve_forever()
    finally:
        server.server_close()


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@cli.command("ls")
@with_options(project_options + selection_options)
@click.option("--output", "output_format", type=click.Choice(["text", "json"]), default="text")
@click.pass_obj
@_handle_errors
def ls_command(
    obj: dict[str, Any], target: str | None, select: tuple[str, ...], exclude: tuple[str, ...], output_format: str
) -> None:
    """List models with their features, and sources."""
    from featuresql.cli.output import describe_project

    with _context(obj, target, offline=True) as context:
        selected = context.select(select, exclude)
        listing = describe_project(context.project, context.compiled, selected, with_on_demand=not select + exclude)
        if output_format == "json":
            click.echo(json.dumps(listing, indent=2))
            return
        from featuresql.cli.output import print_listing

        print_listing(listing)


@cli.command()
@with_options(project_options)
@click.pass_obj
@_handle_errors
def debug(obj: dict[str, Any], target: str | None) -> None:
    """Check the project, the profile and the connection."""
    from featuresql.context import Context

    context = Context(obj["project_dir"], target=target or obj["target"], variables=obj["vars"])
    click.echo(f"project:  {context.project.name} ({context.project.root})")
    click.echo(f"models:   {len(context.compiled.models)} compiled, sources: {len(context.project.sources)}")
    click.echo(f"target:   {context.target_name} ({context.adapter.describe()})")
    with context:
        context.query("select 1")
    click.secho("Connection OK.", fg="green")


def _check_served(context: Any, manifest: Any, reference: str) -> None:
    """A declared service the last sync's manifest lacks: say which of its models are not online."""
    from featuresql.compile.services import find_service, service_models

    declared = find_service(context.project.services, reference.partition("@")[0])  # the reader checks versions
    if declared.name not in manifest.services:
        on_demand = context.compiled.on_demand  # computed from the models they read: those must be online
        read = [m for name in service_models(declared) for m in (on_demand[name].refs if name in on_demand else [name])]
        missing = [m for m in dict.fromkeys(read) if m not in manifest.models]
        if not missing:
            raise ConfigError(
                f"service {declared.name!r} is newer than the last sync's online manifest: run `featuresql sync`"
            )
        raise ConfigError(
            f"service {declared.name!r} is not served online: its models {', '.join(missing)} are not in the "
            "online store; set config(online=true) on them and run `featuresql sync`"
        )


def _features_or_service(features: tuple[str, ...], service: str | None) -> None:
    if bool(features) == bool(service):
        raise ConfigError("give --features model[.feature],... or --service NAME (one of them)")


def _plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def _thread_error_line(args: threading.ExceptHookArgs) -> None:
    """Drivers' own background threads (Snowflake's query-cancel timers) fail when the server is gone.

    featuresql's work runs in executors whose errors reach the command and its one-line
    message; a driver thread's traceback would only repeat that error (and may quote
    driver internals), so it is one line naming the thread, the traceback with --debug.
    """
    if "--debug" in sys.argv[1:]:
        threading.__excepthook__(args)
        return
    name = args.thread.name if args.thread else "a background thread"
    click.secho(f"warning: {name} of a driver failed ({args.exc_type.__name__}); --debug shows it", dim=True, err=True)


def main() -> None:
    """The console script: click's usage errors become one line too (no usage block), exit code 2."""
    threading.excepthook = _thread_error_line  # the process's own hook: not set for in-process callers
    no_args_is_help = getattr(click.exceptions, "NoArgsIsHelpError", ())  # click >= 8.2
    try:
        code = cli.main(prog_name="featuresql", standalone_mode=False)
        if isinstance(code, int):  # click's Exit (--help, --version) returns its exit code
            sys.exit(code)
    except no_args_is_help as exc:  # `featuresql` alone, or a group without its command
        click.echo(exc.ctx.get_help() if exc.ctx else str(exc), err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if isinstance(exc, click.UsageError) and exc.ctx else ""
        click.secho(f"Error: {' '.join(exc.format_message().split())}{hint}", fg="red", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.secho("Aborted.", fg="red", err=True)
        sys.exit(1)


__all__ = ["EXIT_USAGE", "cli", "main"]
