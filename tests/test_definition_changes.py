"""A model's definition covers what it reads: upstream models and the types of its source columns.

A change anywhere upstream of a window model is refused with one command, printed in
the error, that rebuilds the topmost changed models and everything below them; run
exactly as printed, it leaves every table equal to a fresh build of the changed
project (compared whole). ``on_change='rebuild'`` models rebuild by themselves, once
the run also builds every changed model they read. A source column whose type changes
is a change (never a double rounded into an old BIGINT column), and sources.yml must
declare each column in the family the warehouse has it in.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from conftest import CliResult
from engines import Engine, canonical_rows, differences, write_profile
from projects import duckdb_profile, load_rows, write_project
from sqlglot import exp

from featuresql.context import Context

NOW = "2024-01-08T00:00:00"
EARLIER = "2024-01-05T00:00:00"  # the first build: later runs compute Jan 5-7 incrementally
HINT = re.compile(r"`(featuresql run --full-refresh --select [^`]+)`")
Cli = Callable[..., CliResult]


def columns(amount: str) -> list[dict[str, str]]:
    """sources.yml's columns of raw.events, ``amount`` of type ``amount``."""
    kinds = {"user_id": "bigint", "ts": "timestamp", "amount": amount, "category": "varchar"}
    return [{"name": name, "type": kind} for name, kind in kinds.items()]


def schema(amount: pa.DataType) -> pa.Schema:
    return pa.schema(
        [("user_id", pa.int64()), ("ts", pa.timestamp("us")), ("amount", amount), ("category", pa.string())]
    )


# User 2's amounts on Jan 3 and 5 are 2.4: its 3-day sum at Jan 6 is 4.8 (rounded into a BIGINT column: 5).
DOUBLES = (1, 2, 3, 2.4, 5, 2.4)


def events(amounts: Sequence[Any] = (1, 2, 3, 4, 5, 6)) -> list[dict[str, Any]]:
    """Two users' events on Jan 1-5 (``amounts`` in order), in categories a and b."""
    times = [(1, 1, 5), (2, 1, 7), (1, 2, 3), (2, 3, 8), (1, 4, 1), (2, 5, 9)]
    return [
        {"user_id": user, "ts": datetime(2024, 1, day, hour), "amount": amount, "category": "ab"[n % 2]}
        for n, ((user, day, hour), amount) in enumerate(zip(times, amounts, strict=True))
    ]


SNAPSHOT = "select user_id, ts, amount, category from {{ source('raw', 'events') }}\n"
WINDOW = (
    "{{{{ config(entity='user', timestamp='ts', grain='1d', start='2024-01-01'{options}) }}}}\n"
    "select user_id, ts, {{{{ window_count(windows=['1d', '3d']) }}}}, {{{{ window_sum('amount', windows=['3d']) }}}}\n"
    "from {reads}{where}\n"
)
DOWNSTREAM = (
    "{{{{ config(entity='user', timestamp='ts', grain='1d', start='2024-01-01'{options}) }}}}\n"
    "select user_id, ts, {{{{ window_sum('count_1d', windows=['2d']) }}}} from {{{{ ref('{reads}') }}}}\n"
)


def window(reads: str, where: str = "", options: str = "") -> str:
    return WINDOW.format(reads=reads, where=where, options=options)


def downstream(reads: str, options: str = "") -> str:
    return DOWNSTREAM.format(reads=reads, options=options)


class Project:
    """A project over raw.events in its own DuckDB file."""

    def __init__(self, root: Path, models: Mapping[str, str], amount: str = "bigint"):
        self.root = root
        self.database = root / "d.duckdb"
        self.models = dict(models)
        self.amount = amount
        self.write()

    def write(self) -> None:
        write_project(
            self.root,
            "changes",
            entities={"user": {"user_id": "bigint"}},
            tables={"events": {"event_time": "ts", "columns": columns(self.amount)}},
            models=self.models,
            profile=duckdb_profile(self.database),
        )

    def change(self, model: str, sql: str) -> None:
        self.models[model] = sql
        self.write()

    def load(self, rows: Sequence[Mapping[str, Any]], amount: pa.DataType | None = None) -> None:
        load_rows(self.database, "raw.events", rows, schema(amount or pa.int64()))

    def run(self, cli: Cli, *args: str, now: str = NOW) -> CliResult:
        return cli(self.root, "run", "--now", now, *args)

    def tables(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every model's table, whole, sorted."""
        with duckdb.connect(str(self.database), read_only=True) as connection:
            return {
                name: connection.execute(f"select * from main.{name} order by all").fetchall() for name in self.models
            }

    def fresh_copy(self, folder: Path) -> Project:
        """The project as it is now, with the same raw events, in a database of its own."""
        folder.mkdir(parents=True)
        copy = Project(folder, self.models, self.amount)
        shutil.copy2(self.database, copy.database)
        with duckdb.connect(str(copy.database)) as connection:
            connection.execute("drop schema if exists featuresql cascade")
            for name in self.models:
                connection.execute(f"drop table if exists main.{name}")
        return copy


def follow_hint(project: Project, cli: Cli, refused: CliResult) -> str:
    """Run the command the refusal printed, exactly (at the test's ``--now``); return it."""
    found = HINT.search(refused.stderr)
    assert refused.exit_code == 2 and found, refused.stdout + refused.stderr
    arguments = shlex.split(found.group(1))[1:]  # after the program name
    assert arguments[0] == "run"
    result = project.run(cli, *arguments[1:])
    assert result.exit_code == 0, result.stdout + result.stderr
    return found.group(1)


def assert_fresh(project: Project, cli: Cli, folder: Path) -> None:
    """Every table equals a first build of the project as it is now, from the same events."""
    fresh = project.fresh_copy(folder)
    result = fresh.run(cli)
    assert result.exit_code == 0, result.stdout + result.stderr
    assert project.tables() == fresh.tables()


def built(project: Project, cli: Cli, now: str = EARLIER) -> None:
    result = project.run(cli, now=now)
    assert result.exit_code == 0, result.stdout + result.stderr


# -- upstream changes ---------------------------------------------------------------------------


@pytest.mark.duckdb
def test_a_window_model_over_a_changed_snapshot_is_rebuilt_from_it(tmp_path: Path, cli: Cli) -> None:
    project = Project(tmp_path / "p", {"s": SNAPSHOT, "w": window("{{ ref('s') }}")})
    project.load(events())
    built(project, cli)
    before = project.tables()["w"]
    project.change("s", SNAPSHOT.replace("\n", " where category = 'a'\n"))
    refused = project.run(cli)
    assert "model 'w' changed since its table was computed (upstream 's')" in refused.stderr, refused.stderr
    assert "w.sql" in refused.stderr
    assert project.tables()["w"] == before  # nothing was built
    assert follow_hint(project, cli, refused) == "featuresql run --full-refresh --select s+"
    assert_fresh(project, cli, tmp_path / "fresh")
    assert project.tables()["w"] != before
    assert project.run(cli, "--select", "w").exit_code == 0  # the next run finds nothing changed


@pytest.mark.duckdb
def test_a_window_model_over_a_changed_window_model_is_rebuilt_after_it(tmp_path: Path, cli: Cli) -> None:
    reads = "{{ source('raw', 'events') }}"
    project = Project(tmp_path / "p", {"w": window(reads), "w2": downstream("w")})
    project.load(events())
    built(project, cli)
    project.change("w", window(reads, " where category = 'a'"))
    alone = project.run(cli, "--select", "w2")  # the changed model is not selected: still named, with +
    assert "model 'w2' is built from 'w', which changed and which this run does not rebuild" in alone.stderr
    assert "`featuresql run --full-refresh --select w+`" in alone.stderr
    assert project.run(cli, "--full-refresh", "--select", "w2").exit_code == 2  # w2 alone would read the old w
    refused = project.run(cli)
    assert "model 'w' changed since its table was computed (and 1 more selected model):" in refused.stderr
    assert follow_hint(project, cli, refused) == "featuresql run --full-refresh --select w+"
    manifest = json.loads((project.root / "target" / "manifest.json").read_text())
    assert_fresh(project, cli, tmp_path / "fresh")
    with duckdb.connect(str(project.database), read_only=True) as connection:
        recorded = connection.execute("select distinct model, definition from featuresql.intervals").fetchall()
    assert sorted(recorded) == [(name, manifest["models"][name]["definition"]) for name in ("w", "w2")]


@pytest.mark.duckdb
def test_every_changed_root_is_named(tmp_path: Path, cli: Cli) -> None:
    reads = "{{ source('raw', 'events') }}"
    models = {"s": SNAPSHOT, "a": window("{{ ref('s') }}"), "b": window(reads), "w2": downstream("b")}
    project = Project(tmp_path / "p", models)
    project.load(events())
    built(project, cli)
    project.change("s", SNAPSHOT.replace("\n", " where category = 'b'\n"))
    project.change("b", window(reads, " where category = 'a'"))
    refused = project.run(cli)
    assert "model 'a' changed since its table was computed (upstream 's') (and 2 more selected models)" in (
        refused.stderr
    ), refused.stderr
    assert follow_hint(project, cli, refused) == "featuresql run --full-refresh --select b+ s+"
    assert_fresh(project, cli, tmp_path / "fresh")


@pytest.mark.duckdb
def test_models_set_to_rebuild_rebuild_when_upstream_changes(tmp_path: Path, cli: Cli) -> None:
    rebuild = ", on_change='rebuild'"
    models = {"s": SNAPSHOT, "w": window("{{ ref('s') }}", options=rebuild), "w2": downstream("w", rebuild)}
    project = Project(tmp_path / "p", models)
    project.load(events())
    built(project, cli)
    project.change("s", SNAPSHOT.replace("\n", " where category = 'a'\n"))
    alone = project.run(cli, "--select", "w+")  # s is not rebuilt by this run: w would read its old rows
    assert "`featuresql run --full-refresh --select s+`" in alone.stderr, alone.stderr
    built(project, cli, now=NOW)
    assert_fresh(project, cli, tmp_path / "fresh")


@pytest.mark.duckdb
def test_a_new_source_column_no_model_reads_changes_nothing(tmp_path: Path, cli: Cli) -> None:
    project = Project(tmp_path / "p", {"s": SNAPSHOT, "w": window("{{ ref('s') }}")})
    project.load(events())
    built(project, cli)
    with duckdb.connect(str(project.database)) as connection:
        connection.execute("alter table raw.events add column note varchar")
    result = project.run(cli)
    assert result.exit_code == 0, result.stderr
    assert "--full-refresh" not in result.stderr
    with duckdb.connect(str(project.database), read_only=True) as connection:
        definitions = connection.execute("select distinct model, definition from featuresql.definitions").fetchall()
    assert [model for model, _ in definitions] == ["s"]  # one build after another, of one definition


@pytest.mark.duckdb
def test_state_of_an_older_formula_is_refused_with_the_rebuild(tmp_path: Path, cli: Cli) -> None:
    """What the README promises on upgrading: stored hashes of the old formula are a change."""
    project = Project(tmp_path / "p", {"s": SNAPSHOT, "w": window("{{ ref('s') }}")})
    project.load(events())
    built(project, cli)
    with duckdb.connect(str(project.database)) as connection:
        connection.execute("update featuresql.intervals set definition = 'older'")
        connection.execute("delete from featuresql.definitions")  # older versions recorded none
    refused = project.run(cli)
    assert follow_hint(project, cli, refused) == "featuresql run --full-refresh --select s+"
    assert_fresh(project, cli, tmp_path / "fresh")


# -- source column types ------------------------------------------------------------------------


@pytest.mark.duckdb
def test_a_source_column_type_change_is_a_change(tmp_path: Path, cli: Cli) -> None:
    reads = "{{ source('raw', 'events') }}"
    project = Project(tmp_path / "p", {"w": window(reads), "w2": downstream("w")})
    project.load(events())
    built(project, cli)
    project.amount = "double"
    project.write()
    project.load(events(DOUBLES), pa.float64())
    refused = project.run(cli)
    assert follow_hint(project, cli, refused) == "featuresql run --full-refresh --select w+"
    assert_fresh(project, cli, tmp_path / "fresh")
    with duckdb.connect(str(project.database), read_only=True) as connection:
        sums = [s for (s,) in connection.execute("select amount_sum_3d from main.w where user_id = 2").fetchall()]
    assert 4.8 in sums and all(isinstance(s, float) for s in sums), sums  # Jan 6: Jan 3 and 5 (not 5)


@pytest.mark.duckdb
def test_a_declared_type_of_another_family_than_the_table_is_refused(tmp_path: Path, cli: Cli) -> None:
    project = Project(tmp_path / "p", {"w": window("{{ source('raw', 'events') }}")})
    project.load(events(DOUBLES), pa.float64())  # the table has doubles, sources.yml says bigint
    result = project.run(cli)
    assert result.exit_code == 2
    assert (
        "sources.yml:6: source raw.events: column 'amount' is declared bigint in sources.yml, but table raw.events "
        "on target 'dev' has it as DOUBLE: update its type in sources.yml"
    ) in result.stderr, result.stderr
    assert len(result.stderr_lines) == 1


# -- the same type change on every engine -------------------------------------------------------


def engine_project(engine: Engine, folder: Path, amount: str, data: pa.Table) -> Path:
    """A window model (and one over it) over raw.events on ``engine``, in a namespace of its own."""
    reads = "{{ source('raw', 'events') }}"
    project = write_project(
        folder,
        "changes",
        entities={"user": {"user_id": "bigint"}},
        tables={"events": {"event_time": "ts", "columns": columns(amount)}},
        models={"w": window(reads), "w2": downstream("w")},
    )
    write_profile(project, engine.target(folder), name="dev")
    load_events(project, data)
    return project


def load_events(project: Path, data: pa.Table) -> None:
    with Context(project) as context:
        context.adapter.ensure_schema("raw")
        context.adapter.load_table(exp.table_("events", db="raw"), data)


def engine_tables(project: Path) -> dict[str, list[dict[str, Any]]]:
    with Context(project) as context:
        found = {}
        for name in ("w", "w2"):
            rows = canonical_rows(context.query(exp.select("*").from_(context.compiled.models[name].relation.copy())))
            found[name] = sorted(rows, key=lambda row: (row["user_id"], row["ts"]))
        return found


def test_a_source_type_change_on_every_engine(engine: Engine, tmp_path: Path, cli: Cli) -> None:
    doubles = pa.Table.from_pylist(events(DOUBLES), schema=schema(pa.float64()))
    project = engine_project(
        engine, tmp_path / "p", "bigint", pa.Table.from_pylist(events(), schema=schema(pa.int64()))
    )
    first = cli(project, "run", "--now", EARLIER)
    assert first.exit_code == 0, first.stdout + first.stderr
    write_project(
        project,
        "changes",
        entities={"user": {"user_id": "bigint"}},
        tables={"events": {"event_time": "ts", "columns": columns("double")}},
    )
    load_events(project, doubles)
    refused = cli(project, "run", "--now", NOW)
    found = HINT.search(refused.stderr)
    assert refused.exit_code == 2 and found, refused.stdout + refused.stderr
    assert found.group(1) == "featuresql run --full-refresh --select w+"
    followed = cli(project, "run", "--now", NOW, *shlex.split(found.group(1))[2:])
    assert followed.exit_code == 0, followed.stdout + followed.stderr
    fresh = engine_project(engine, tmp_path / "fresh", "double", doubles)
    built_fresh = cli(fresh, "run", "--now", NOW)
    assert built_fresh.exit_code == 0, built_fresh.stdout + built_fresh.stderr
    got, want = engine_tables(project), engine_tables(fresh)
    for name in ("w", "w2"):
        problems = differences(got[name], want[name])
        assert not problems, f"{engine.name}: {name} differs from a fresh build:\n" + "\n".join(problems)
    sums = [row["amount_sum_3d"] for row in got["w"] if row["user_id"] == 2 and row["amount_sum_3d"] is not None]
    assert any(abs(float(s) - 4.8) < 1e-9 for s in sums), sums


@pytest.mark.duckdb
def test_a_missing_source_is_no_change(tmp_path: Path) -> None:
    """A dry run runs no hooks, so a source they create may be missing: its readers are not called changed."""
    project = Project(tmp_path / "p", {"w": window("{{ source('raw', 'events') }}")})
    project.load(events())
    with Context(project.root) as context:
        assert context.run(now=datetime(2024, 1, 5, tzinfo=UTC)).ok
    with duckdb.connect(str(project.database)) as connection:
        connection.execute("drop table raw.events")
    with Context(project.root) as context:
        planned = context.plan(now=datetime(2024, 1, 8, tzinfo=UTC))
    assert [(p.name, p.action, len(p.batches)) for p in planned] == [("w", "incremental", 1)]
