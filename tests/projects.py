"""How tests make featuresql projects: copies of the example project, and throwaway projects of their own.

- ``copy_example`` copies the example project (the end-to-end fixture) into a test's
  folder and applies ``(file, old, new)`` edits; ``built_example`` runs the copy as well.
- ``write_project`` writes a throwaway project over raw tables (project.yml,
  sources.yml, the models, the profile); ``load_rows`` fills a raw table of its
  DuckDB database; ``run_models`` runs a project and fails on any model that failed.
- ``render_macro`` spells an ``oracle.Macro`` as the window macro call a model writes.

Nothing here writes into the repository: every project lives under a test's folder.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import yaml
from engines import write_profile
from oracle import Macro, duration_label

from featuresql.context import Context
from featuresql.run.planning import RunOptions

REPO_ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_FILES = ("project.yml", "profiles.yml", "features", "macros")
# Small demo data so every CLI run takes well under a second.
SMALL_VARS = {"demo_transactions": 20000, "demo_users": 500, "demo_balance_events": 2000}
SMALL_VARS_ARG = json.dumps(SMALL_VARS)
# Edits applied to a copy of the example project: (file, old text, new text).
# ``old`` None writes ``new`` as the whole file (creating it if needed).
Edit = tuple[str, str | None, str]
# The example project's DuckDB file (the dev target), relative to the project.
DATABASE = Path("target") / "cash_advance.duckdb"
# The example project with more online: user_transactions delayed by 2 hours, and user_balances (a
# snapshot model with a 30-day ttl and a tie-break column).
ONLINE_EDITS: list[Edit] = [
    ("features/user_transactions.sql", "online=true", "online=true, data_delay='2h'"),
    ("features/user_balances.sql", "ttl='30d',", "ttl='30d', online=true,"),
]
# The features of the example project's user_transactions model, in their order.
USER_TRANSACTIONS_FEATURES = (
    "count_1d",
    "count_7d",
    "count_30d",
    "amount_sum_1d",
    "amount_sum_7d",
    "amount_sum_30d",
    "amount_avg_7d",
    "amount_avg_30d",
    "amount_max_7d",
    "amount_stddev_30d",
    "merchant_category_count_distinct_30d",
    "amount_last_7d",
)


# -- the example project ----------------------------------------------------------------------


def copy_example(destination: Path, edits: Iterable[Edit] = ()) -> Path:
    """Copy the example project to ``destination`` and apply ``edits``."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in EXAMPLE_FILES:
        source = REPO_ROOT / name
        if source.is_dir():
            shutil.copytree(source, destination / name)
        else:
            shutil.copy2(source, destination / name)
    apply_edits(destination, edits)
    return destination


def apply_edits(destination: Path, edits: Iterable[Edit], label: str = "") -> None:
    """Apply ``(file, old, new)`` edits under ``destination``; each ``old`` must occur exactly once."""
    for relative, old, new in edits:
        path = destination / relative
        if old is None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new, encoding="utf-8")
            continue
        text = path.read_text(encoding="utf-8")
        assert text.count(old) == 1, f"{label}edit target {old!r} must occur once in {relative}"
        path.write_text(text.replace(old, new), encoding="utf-8")


def built_example(
    destination: Path,
    edits: Iterable[Edit] = (),
    *,
    variables: Mapping[str, Any] = SMALL_VARS,
    now: datetime | None = None,
) -> Path:
    """A copy of the example project (``copy_example``), every model run at ``now``."""
    project = copy_example(destination, edits)
    with Context(project, variables=dict(variables)) as context:
        run_models(context, now=now)
    return project


# -- throwaway projects -----------------------------------------------------------------------


def write_project(
    root: Path,
    name: str,
    *,
    entities: Mapping[str, Mapping[str, str]],
    tables: Mapping[str, Mapping[str, Any]],
    models: Mapping[str, str] | None = None,
    profile: Mapping[str, Any] | None = None,
    dialect: str | None = "duckdb",
    settings: Mapping[str, Any] | None = None,
    source: str = "raw",
) -> Path:
    """Write a project of its own under ``root``: its files, and its one target when ``profile`` is given.

    ``entities`` maps each entity to its key columns and types (``{"user": {"user_id": "bigint"}}``);
    ``tables`` each table of the source ``source`` (schema ``raw``) to its settings in sources.yml
    (``{"events": {"event_time": "ts"}}``); ``models`` each model to its SQL; ``settings`` adds
    project.yml keys (``defaults``, ``vars``); ``profile`` is the target's settings (target ``dev``).
    """
    project: dict[str, Any] = {"name": name}
    if dialect is not None:
        project["dialect"] = dialect
    project["entities"] = {entity: {"keys": dict(keys)} for entity, keys in entities.items()}
    project.update(settings or {})
    sources = {
        "version": 1,
        "sources": [
            {
                "name": source,
                "schema": "raw",
                "tables": [{"name": table, **table_settings} for table, table_settings in tables.items()],
            }
        ],
    }
    (root / "features").mkdir(parents=True, exist_ok=True)
    (root / "project.yml").write_text(yaml.safe_dump(project, sort_keys=False), encoding="utf-8")
    (root / "features" / "sources.yml").write_text(yaml.safe_dump(sources, sort_keys=False), encoding="utf-8")
    for model, sql in (models or {}).items():
        (root / "features" / f"{model}.sql").write_text(sql, encoding="utf-8")
    if profile is not None:
        write_profile(root, profile, name="dev")
    return root


# The raw events of throwaway window models: ``seq`` breaks ties, ``category`` is a string to count.
EVENTS_SCHEMA = pa.schema(
    [
        ("user_id", pa.int64()),
        ("ts", pa.timestamp("us")),
        ("amount", pa.float64()),
        ("category", pa.string()),
        ("seq", pa.int64()),
    ]
)


def duckdb_profile(database: Path) -> dict[str, Any]:
    """A DuckDB target on ``database`` (models in its ``main`` schema)."""
    return {"type": "duckdb", "path": str(database)}


def load_rows(database: Path, table: str, rows: Sequence[Mapping[str, Any]], schema: pa.Schema) -> None:
    """Replace ``table`` (``raw.events``) of the DuckDB ``database`` with ``rows``, typed by ``schema``."""
    data = pa.Table.from_pylist([dict(row) for row in rows], schema=schema)
    with duckdb.connect(str(database)) as connection:
        connection.execute(f"create schema if not exists {table.partition('.')[0]}")
        connection.register("incoming", data)
        connection.execute(f"create or replace table {table} as select * from incoming")
        connection.unregister("incoming")


def run_models(context: Context, *, now: datetime | None = None, select: Sequence[str] = (), **options: Any) -> None:
    """Run the models (``select``: all) at ``now`` with ``RunOptions(**options)``; every one must succeed."""
    result = context.run(tuple(select), now=now, options=RunOptions(**options))
    assert result.ok, [(r.model, r.message) for r in result.results if r.status != "success"]


def render_macro(macro: Macro) -> str:
    """The window macro call for ``macro``, e.g. ``window_sum('amount', windows=['1d', '7d'])``.

    Windows are spelled as ``macro.spellings`` gives them, else by their shortest exact unit.
    """
    spellings = macro.spellings or tuple(duration_label(w) for w in macro.windows)
    arguments = [repr(macro.column)] if macro.column else []
    arguments.append(f"windows=[{', '.join(map(repr, spellings))}]")
    if macro.name is not None:
        arguments.append(f"name={macro.name!r}")
    if macro.tie_break is not None:
        arguments.append(f"tie_break={macro.tie_break!r}")
    return f"window_{macro.function}({', '.join(arguments)})"


def window_features(macros: Iterable[Macro]) -> str:
    """The macro calls of a model's select list, one a line: ``{{ window_count(...) }},\\n    ...``."""
    return ",\n    ".join(f"{{{{ {render_macro(macro)} }}}}" for macro in macros)
