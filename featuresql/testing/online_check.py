"""``featuresql test --online``: does the online store serve the warehouse's latest values?

One case per online model, ``online_<model>``. Its check

1. samples at most ``env.online_sample`` entities of the model's latest
   available rows at ``env.now`` (``featuresql.online.mirror.latest_rows``: exactly the rows a
   sync at that time writes). Half of the sample is the entities whose latest
   row is newest (ordered by time, then keys): the rows most recently changed
   are the ones a lagging sync has not written yet. The other half is spread
   evenly over all entities in key order, so old, quiet entities are checked
   too. Both orders are total, so the same data always gives the same sample;
   no hash, so the SQL is the same on every engine;
2. reads the same entities from the target's online store, as the reader
   does: an item whose TTL (at ``env.now``) has passed is missing, and a
   missing item or attribute reads as the feature's default;
3. classifies each entity:

   - ``ok``: the item has the row's feature timestamp and every value, or there
     is no live item and the row reads as the defaults (an empty window, whose
     item sync lets expire at once);
   - ``mismatch``: same feature timestamp, some value differs;
   - ``stale``: the item is older than the row (the sync is behind);
   - ``missing``: no live item, where the row is not the defaults;
   - ``unexpected``: the item is newer than the warehouse's row (the table
     was rebuilt or rolled back after the sync);
4. reads the store's side: every live item of the model whose entity has no
   current row in the warehouse (none at all, or one that reads as no item) is
   a ``stray`` (its events were deleted after the last sync, or the item was
   written behind sync's back). This scans the store: the whole table on DynamoDB.

Values compare exactly: the warehouse's value is encoded as sync encodes it
(``serving.items.to_attribute``: a double as its shortest repr, a decimal as
its digits) and numbers compare as decimals, so DynamoDB's normalisation
(``2.0`` stored as ``2``) is no difference and any other is. The failures are
the entities not ok; the details list examples per entity and column.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlglot import exp

from featuresql.adapters.store import OnlineStore
from featuresql.compile.features import joined_model
from featuresql.compile.models import CompiledModel, CompiledProject
from featuresql.errors import ConfigError, ExecutionError
from featuresql.online.mirror import OnlineRows, current_rows, latest_rows
from featuresql.online.stores import online_models, open_store, read_manifest
from featuresql.serving.items import (
    EXPIRES,
    FEATURE_TS,
    AttributeValue,
    ItemError,
    from_attribute,
    partition_key,
    split_partition_key,
    to_attribute,
    warehouse_key,
)
from featuresql.serving.manifest import OnlineModel
from featuresql.serving.reader import item_expired
from featuresql.serving.tables import Item, StoreUnavailable
from featuresql.sql import dialects
from featuresql.sql.point_in_time import JoinedModel
from featuresql.testing.cases import Check, Outcome, TestCase, TestEnv
from featuresql.testing.failing import format_table
from featuresql.times import EPOCH, MICROSECOND, epoch_micros

CLASSES = ("mismatch", "stale", "missing", "unexpected", "stray")
MAX_EXAMPLES = 20  # rows of the details table
_LATEST = "__latest"
_RECENT = "__featuresql_recent"
_SPREAD = "__featuresql_spread"
_TOTAL = "__featuresql_total"


def online_cases(compiled: CompiledProject) -> list[TestCase]:
    """One ``online_<model>`` case per online model, in dependency order.

    Stream models are not checked here: their items are partials merged at read time, not the
    rows of their table (``tests/test_stream_lifecycle.py`` checks their reads against the extract).
    """
    return [_case(model) for model in online_models(compiled) if model.settings.stream is None]


def _case(model: CompiledModel) -> TestCase:
    return TestCase(
        name=f"online_{model.name}",
        kind="online",
        test_type="data",
        check=_check(model),
        models=(model.name,),
        path=model.path,
        description=f"the online store serves {model.name}'s latest warehouse values",
    )


@dataclass(frozen=True)
class Finding:
    """One sampled entity: its class, and for each difference (column, online value, warehouse value)."""

    entity: dict[str, Any]
    status: str  # ok, mismatch, stale, missing or unexpected
    differences: tuple[tuple[str, Any, Any], ...] = ()


def _check(model: CompiledModel) -> Check:
    joined = joined_model(model, ())

    def check(env: TestEnv) -> Outcome:
        if env.online_sample <= 0:
            return Outcome(0, "online_sample is 0: no entity checked")
        manifest_model, ttl_attribute, store = _synced(env, model)
        query = sample_query(joined, env.now, env.online_sample, env.context.dialect)
        rows = [{k.lower(): v for k, v in row.items()} for row in env.context.adapter.fetch_arrow(query).to_pylist()]
        keys = [partition_key(model.name, [warehouse_key(row[k]) for k in joined.keys]) for row in rows]
        items = _read(store, keys, [FEATURE_TS, EXPIRES, ttl_attribute, *joined.columns])
        moment = epoch_micros(env.now)
        findings = []
        for row, key in zip(rows, keys, strict=True):
            item = items.get(key)
            live = _live(item, ttl_attribute, moment)
            findings.append(classify(row, live, joined, manifest_model, gone="no item" if item is None else "expired"))
        findings += _strays(env, model, joined, manifest_model, store, ttl_attribute)
        return summarize(model.name, findings, query.sql(env.context.dialect, pretty=True))

    return check


def _synced(env: TestEnv, model: CompiledModel) -> tuple[OnlineModel, str, OnlineStore]:
    """The model in the last sync's manifest, the TTL attribute, and the store; ConfigError when never synced."""
    context = env.context
    manifest = read_manifest(context)
    synced = manifest.models.get(model.name)
    if synced is None:
        raise ConfigError(
            f"online model {model.name!r} is not in the online manifest of target "
            f"{context.target_name!r}: run `featuresql sync` first"
        )
    store = open_store(context)
    missing = store.missing()
    if missing is not None:
        raise ConfigError(missing)
    if context.adapter.table_columns(model.relation) is None:
        raise ConfigError(
            f"online model {model.name!r} has no table on target {context.target_name!r}: "
            f"run `featuresql run --select {model.name}` first",
            path=model.path,
        )
    return synced, manifest.ttl_attribute, store


def sample_query(model: JoinedModel, now: datetime, size: int, dialect: str) -> exp.Select:
    """``size`` entities' latest available rows (all of them when fewer): the most recent half, then the
    rest spread evenly in key order.

    The spread numbers the other rows ``r`` from 0 in key order, of ``total``, and
    keeps those with ``r * m mod total < m``: exactly ``m`` rows, evenly spaced, or
    all of them when ``m >= total``.
    """
    recent = -(-size // 2)
    spread = size - recent
    by_time = [dialects.ordered(exp.column(model.timestamp), dialect, desc=True)]
    by_key = [dialects.ordered(exp.column(k), dialect) for k in model.keys]
    columns = [exp.column(c) for c in (*model.keys, model.timestamp, *model.columns)]
    by_recency = exp.select(
        *columns,
        exp.alias_(exp.Window(this=exp.RowNumber(), order=exp.Order(expressions=[*by_time, *by_key])), _RECENT),
    ).from_(exp.alias_(latest_rows(model, now, dialect).subquery(), _LATEST, table=True))
    is_recent = exp.column(_RECENT) <= exp.Literal.number(recent)
    part = [exp.case().when(is_recent.copy(), exp.Literal.number(1)).else_(exp.Literal.number(0))]
    numbered = exp.select(
        *(c.copy() for c in columns),
        exp.column(_RECENT),
        exp.alias_(exp.Window(this=exp.RowNumber(), partition_by=part, order=exp.Order(expressions=by_key)), _SPREAD),
        exp.alias_(exp.Window(this=exp.Count(this=exp.Star()), partition_by=[p.copy() for p in part]), _TOTAL),
    ).from_(by_recency.subquery("__by_recency"))
    position = exp.Mul(
        this=exp.paren(exp.column(_SPREAD) - exp.Literal.number(1)), expression=exp.Literal.number(spread)
    )
    evenly = exp.Mod(this=position, expression=exp.column(_TOTAL)) < exp.Literal.number(spread)
    return (
        exp.select(*(c.copy() for c in columns))
        .from_(numbered.subquery("__numbered"))
        .where(exp.or_(is_recent.copy(), evenly) if spread else is_recent.copy())
        .order_by(*(o.copy() for o in by_key))
    )


def _strays(
    env: TestEnv, model: CompiledModel, joined: JoinedModel, synced: OnlineModel, store: OnlineStore, ttl: str
) -> list[Finding]:
    """Live items of ``model`` whose entity has no current row in the warehouse at ``env.now``."""
    rows = OnlineRows.of(model, synced, "")
    current = current_rows(rows, env.now, env.context.dialect)
    keys = exp.select(*(exp.column(k) for k in joined.keys)).from_(current.subquery("__current"))
    wanted = {
        partition_key(model.name, [warehouse_key(row[k]) for k in joined.keys])
        for row in ({k.lower(): v for k, v in r.items()} for r in env.context.adapter.fetch_arrow(keys).to_pylist())
    }
    moment = epoch_micros(env.now)
    try:
        stored = list(store.scan([FEATURE_TS, EXPIRES, ttl]))
    except StoreUnavailable as exc:
        raise ExecutionError(f"cannot scan the online store ({exc})") from None
    findings = []
    for item in stored:
        key = item["pk"]["S"]
        if not key.startswith(f"{model.name}#") or key in wanted or _live(item, ttl, moment) is None:
            continue
        _, values = split_partition_key(key)
        entity = dict(zip(joined.keys, values, strict=True))
        stamp = _iso(int(item[FEATURE_TS]["N"])) if FEATURE_TS in item else "?"
        findings.append(Finding(entity, "stray", (("(item)", f"item at {stamp}", "no current row"),)))
    return findings


def _read(store: OnlineStore, keys: list[str], attributes: list[str]) -> dict[str, Item]:
    try:
        return store.read_batch(keys, attributes)
    except StoreUnavailable as exc:
        hint = "has `featuresql sync` run on this target?"
        raise ExecutionError(f"cannot read the online store ({exc}): {hint}") from None


def _live(item: Item | None, ttl_attribute: str, now: int) -> Item | None:
    """The item unless it has expired at ``now`` (epoch microseconds; the reader's rule)."""
    if item is None or item_expired(item, ttl_attribute, now):
        return None
    return item


def classify(
    row: dict[str, Any], item: Item | None, model: JoinedModel, synced: OnlineModel, *, gone: str = "no item"
) -> Finding:
    """Compare one warehouse row with the live item of its entity (None: ``gone``, missing or expired)."""
    entity = {key: row[key] for key in model.keys}
    warehouse_ts = _micros(row[model.timestamp])
    if item is None:
        defaults = all(_same(_default(synced, c), row[c]) for c in model.columns)
        if defaults:
            return Finding(entity, "ok")
        return Finding(entity, "missing", (("(item)", gone, f"row at {_iso(warehouse_ts)}"),))
    online_ts = int(item[FEATURE_TS]["N"])
    if online_ts != warehouse_ts:
        status = "stale" if online_ts < warehouse_ts else "unexpected"
        return Finding(entity, status, ((model.timestamp, _iso(online_ts), _iso(warehouse_ts)),))
    differences = []
    for column in model.columns:
        attribute = item.get(column) or _default(synced, column)
        if not _same(attribute, row[column]):
            differences.append((column, _decode(attribute, synced, column), row[column]))
    return Finding(entity, "mismatch" if differences else "ok", tuple(differences))


def _default(synced: OnlineModel, column: str) -> AttributeValue:
    feature = synced.features.get(column)
    return to_attribute(feature.default if feature is not None else None)


def _same(attribute: AttributeValue, value: Any) -> bool:
    """Does the stored attribute hold exactly what sync writes for ``value``?"""
    try:
        expected = to_attribute(value)
    except ItemError:
        return False
    if "N" in attribute and "N" in expected:
        return Decimal(attribute["N"]) == Decimal(expected["N"])
    return attribute == expected


def _decode(attribute: AttributeValue, synced: OnlineModel, column: str) -> Any:
    feature = synced.features.get(column)
    return from_attribute(attribute, feature.kind if feature is not None else None)


def summarize(model: str, findings: list[Finding], sql: str) -> Outcome:
    """The outcome of a model's check: failures are the entities not ok, with examples in the details."""
    counts = Counter(finding.status for finding in findings)
    failures = sum(counts[c] for c in CLASSES)
    checked = [finding for finding in findings if finding.status != "stray"]
    sampled = f"{len(checked):,} sampled {'entity' if len(checked) == 1 else 'entities'} of {model}"
    if not failures:
        return Outcome(0, f"{sampled}: all agree with the warehouse", sql=sql)
    found = ", ".join(f"{counts[c]:,} {c}" for c in CLASSES if counts[c])
    hint = " (run `featuresql sync --repair`: it rewrites exactly what is wrong in the store)"
    if counts["unexpected"] > counts["stale"] + counts["missing"] + counts["mismatch"]:
        hint = (
            " (the store holds newer values than the warehouse at this time: was it synced with a later --now? "
            "If not, `featuresql sync --full` rewrites it)"
        )
    elif counts["stale"] or counts["missing"] or counts["stray"]:
        hint = " (the sync is behind: run `featuresql sync`; if it writes nothing, `featuresql sync --repair`)"
    return Outcome(failures, f"{sampled}: {found}, {counts['ok']:,} ok{hint}", _details(findings), sql)


def _details(findings: list[Finding]) -> str:
    rows = []
    for finding in findings:
        entity = ", ".join(f"{k}={v}" for k, v in finding.entity.items())
        for column, online, warehouse in finding.differences:
            rows.append(
                {"entity": entity, "class": finding.status, "column": column, "online": online, "warehouse": warehouse}
            )
    shown = format_table(["entity", "class", "column", "online", "warehouse"], rows[:MAX_EXAMPLES])
    return shown + (f"\n({len(rows) - MAX_EXAMPLES:,} more not shown)" if len(rows) > MAX_EXAMPLES else "")


def _micros(value: datetime) -> int:
    return epoch_micros(value)


def _iso(micros: int) -> str:
    return (EPOCH + micros * MICROSECOND).strftime("%Y-%m-%d %H:%M:%S.%f").removesuffix(".000000")
