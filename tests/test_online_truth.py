"""The online store converges to the warehouse, whatever happened to either (run on every online store).

Each test changes something (a second store, a wiped or restored store, deleted
events, a changed ``ttl``/``data_delay``, a model or feature removed), syncs, and
then reads every entity through the reader at the sync's time and compares it with
``featuresql extract`` at the same time, feature by feature; and the store holds
nothing else: every item is an online model's entity whose extract is not what a
missing item reads as.
"""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import cli_process
import duckdb
import pyarrow as pa
import pytest
from online_stores import NOW, VARS, OnlineStoreTarget, same_value, sync, sync_result, use_dynamodb
from projects import DATABASE, ONLINE_EDITS, apply_edits, built_example, copy_example

from featuresql.context import Context
from featuresql.errors import CompileError, ConfigError, ExecutionError
from featuresql.online.packaging import package_lambda
from featuresql.online.stores import current_manifest, read_manifest
from featuresql.online.sync import preview_sync
from featuresql.run.planning import RunOptions
from featuresql.serving.handler import reader_for
from featuresql.serving.items import split_partition_key
from featuresql.serving.manifest import Manifest, OnlineFeature, OnlineModel
from featuresql.serving.request import parse_query

pytestmark = pytest.mark.duckdb

LATER = NOW + timedelta(days=2)
ONLINE = ("user_transactions", "user_spend_ratios", "user_balances")
NOTHING = dict.fromkeys(ONLINE, (0, 0, 0))
UNKNOWN_USER = 987654321


def context(project: Path) -> Context:
    return Context(project, variables=VARS)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built_example(tmp_path_factory.mktemp("built") / "p", ONLINE_EDITS, variables=VARS, now=LATER)


@pytest.fixture
def project(built: Path, online_store: OnlineStoreTarget, tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A copy of the built project whose store is its own and empty."""
    copied = Path(shutil.copytree(built, tmp_path / "p"))
    online_store.use(copied, request.node.name)
    return copied


def run(project: Path, *, full_refresh: bool = False, select: tuple[str, ...] = ()) -> None:
    with context(project) as ctx:
        assert ctx.run(select, now=LATER, options=RunOptions(full_refresh=full_refresh)).ok


def users(project: Path) -> list[int]:
    with duckdb.connect(str(project / DATABASE), read_only=True) as connection:
        rows = connection.execute("select distinct user_id from main.user_profile order by 1").fetchall()
    return [row[0] for row in rows] + [UNKNOWN_USER]


def assert_serves_the_extract(
    project: Path, online_store: OnlineStoreTarget, now: datetime = NOW, models: tuple[str, ...] = ONLINE
) -> None:
    """Every entity reads as the extract at ``now``; the store holds no item that should not be there."""
    entities = users(project)
    spine = pa.table({"user_id": entities, "ts": [now.replace(tzinfo=None)] * len(entities)})
    with context(project) as ctx:
        extract = ctx.extract(spine, list(models)).table
        manifest = read_manifest(ctx)
    assert extract is not None and set(manifest.models) == set(models)
    offline = {row["user_id"]: row for row in extract.to_pylist()}
    reader = reader_for(manifest)
    reader.clock = now.timestamp
    for start in range(0, len(entities), 100):
        chunk = entities[start : start + 100]
        status, body = reader.answer({"entities": {"user_id": chunk}, "features": list(models)})
        assert status == 200, body
        for result in json.loads(body, parse_float=Decimal)["results"]:
            row = offline[result["entity"]["user_id"]]
            for name, value in result["features"].items():
                assert same_value(value, row[name]), (row["user_id"], name, value, row[name])
    for key in online_store.items(project):
        model, (user,) = split_partition_key(key)
        assert model in models, key
        assert not reads_as_missing(manifest, model, offline[user]), key  # an item for nothing


def reads_as_missing(manifest: Manifest, model: str, row: dict[str, object]) -> bool:
    features = manifest.models[model].features.values()
    return all(row[f"{model}__{f.name}"] == f.default for f in features)


def use_other_store(project: Path, online_store: OnlineStoreTarget, label: str) -> None:
    """Point the project's dev target at another, empty store of the same kind (same warehouse)."""
    if online_store.endpoint is None:
        profiles = project / "profiles.yml"
        text = profiles.read_text(encoding="utf-8")
        profiles.write_text(
            text.replace("    schema: main\n", "    schema: main\n    online: {store: local, path: other.sqlite}\n", 1),
            encoding="utf-8",
        )
        return
    from online_stores import table_name

    use_dynamodb(project, online_store.endpoint.endpoint_url, table_name(label))


# -- new, wiped and restored stores ------------------------------------------------------------


def test_a_second_store_on_the_same_warehouse_gets_everything(
    project: Path, online_store: OnlineStoreTarget, tmp_path: Path
) -> None:
    first = sync(project)
    profiles = (project / "profiles.yml").read_text(encoding="utf-8")
    use_other_store(project, online_store, f"{tmp_path.name}_other")
    second = sync_result(project)
    assert second.restart is not None and "sending every item" in second.restart
    assert {m.model: m.written for m in second.models} == {model: written for model, (_, written, _) in first.items()}
    assert_serves_the_extract(project, online_store)
    (project / "profiles.yml").write_text(profiles, encoding="utf-8")  # back to the first: still in step
    assert sync(project) == NOTHING


def test_a_wiped_store_is_refilled(project: Path, online_store: OnlineStoreTarget) -> None:
    first = sync(project)
    online_store.wipe(project)
    again = sync_result(project)
    assert "lost its sync marker" in (again.restart or "") or "no sync" in (again.restart or "")
    assert {m.model: m.written for m in again.models} == {model: written for model, (_, written, _) in first.items()}
    assert_serves_the_extract(project, online_store)


def test_a_selected_sync_of_a_wiped_store_fills_the_selection_and_vouches_for_nothing_else(
    project: Path, online_store: OnlineStoreTarget
) -> None:
    sync(project)
    online_store.wipe(project)
    assert set(sync(project, select=("user_balances",))) == {"user_balances"}
    assert {key.partition("#")[0] for key in online_store.items(project)} == {"user_balances"}
    with context(project) as ctx:
        manifest = read_manifest(ctx)
    assert set(manifest.models) == {"user_balances"}
    reader = reader_for(manifest)
    reader.clock = NOW.timestamp
    assert reader.answer({"entities": {"user_id": [42]}, "features": ["user_balances"]})[0] == 200
    sync(project)
    assert_serves_the_extract(project, online_store)


def test_a_store_restored_from_an_older_backup_is_refilled(project: Path, online_store: OnlineStoreTarget) -> None:
    """The backup holds older values, and entities that are gone since: all made right, none left."""
    earlier = NOW - timedelta(days=20)
    sync(project, earlier)
    backup = online_store.all_items(project)
    sync(project)
    online_store.restore(project, backup)
    again = sync_result(project)
    assert "restored" in (again.restart or "")
    assert_serves_the_extract(project, online_store)


def test_sync_full_resends_every_item_and_sweeps(project: Path, online_store: OnlineStoreTarget) -> None:
    sync(project)
    stray = {
        "pk": {"S": f"user_transactions#[{UNKNOWN_USER}]"},
        "_ts": {"N": "1"},
        "_v": {"N": "1"},
        "count_7d": {"N": "5"},
    }
    online_store.put(project, stray)  # behind sync's back: a trusted store does not look
    assert sync(project) == NOTHING
    full = sync_result(project, full=True)
    assert full.swept == 1 and all(m.written > 0 for m in full.models)
    assert_serves_the_extract(project, online_store)


def test_repair_rewrites_exactly_what_was_changed_behind_syncs_back(
    project: Path, online_store: OnlineStoreTarget
) -> None:
    sync(project)
    items = online_store.items(project)
    keys = sorted(key for key in items if key.startswith("user_transactions#"))
    gone, edited, older = keys[:3]
    online_store.delete(project, gone)
    online_store.put(project, {**items[edited], "count_7d": {"N": "12345"}})
    online_store.put(project, {**items[older], "_ts": {"N": "1"}})
    stray = {**items[edited], "pk": {"S": f"user_transactions#[{UNKNOWN_USER}]"}}
    online_store.put(project, stray)
    assert sync(project) == NOTHING  # a sync trusts its mirror
    repaired = {m.model: m for m in sync_result(project, repair=True).models}
    found = repaired["user_transactions"].repair
    assert found is not None
    assert (found.missing, found.stale, found.different, found.stray) == (1, 1, 1, 1)
    assert (repaired["user_transactions"].written, repaired["user_transactions"].deleted) == (3, 1)
    assert all(m.written == m.deleted == 0 for name, m in repaired.items() if name != "user_transactions")
    assert_serves_the_extract(project, online_store)
    assert sync(project) == NOTHING


def test_repair_of_a_sample_checks_the_newest_entities(project: Path, online_store: OnlineStoreTarget) -> None:
    sync(project)
    items = online_store.items(project)
    newest = max(
        (key for key in items if key.startswith("user_spend_ratios#")),
        key=lambda key: (int(items[key]["_ts"]["N"]), -int(split_partition_key(key)[1][0])),
    )
    online_store.delete(project, newest)
    repaired = {m.model: m for m in sync_result(project, repair=True, sample=5).models}
    found = repaired["user_spend_ratios"].repair
    assert found is not None and (found.checked, found.missing, found.stray) == (5, 1, 0)
    assert newest in online_store.items(project)


# -- killed syncs --------------------------------------------------------------------------------


def kill_sync(project: Path, point: str, *args: str) -> None:
    """``featuresql sync`` SIGKILLed at the checkpoint ``point``."""
    now = NOW.strftime("%Y-%m-%dT%H:%M:%S")
    cli_process.kill(cli_process.pause_at(project, point, "sync", "--now", now, *args, variables=json.dumps(VARS)))


def add_to_amounts(project: Path, user: int, amount: int) -> None:
    with duckdb.connect(str(project / DATABASE)) as connection:
        connection.execute("update raw.transactions set amount = amount + ? where user_id = ?", [amount, user])
    run(project, full_refresh=True)


@pytest.mark.parametrize("point", ["sync_staged", "sync_written", "sync_before_mirror:3"])
def test_a_killed_sync_then_a_changed_warehouse_converges(
    project: Path, online_store: OnlineStoreTarget, point: str
) -> None:
    """Whatever the killed sync wrote, the next sync makes right, even where the warehouse changed back."""
    sync(project)
    add_to_amounts(project, 42, 1000)
    kill_sync(project, point)
    add_to_amounts(project, 42, -1000)
    sync(project)
    assert_serves_the_extract(project, online_store)
    assert sync(project) == NOTHING


def test_a_killed_full_sync_is_finished_by_the_next(project: Path, online_store: OnlineStoreTarget) -> None:
    """A restart gives up the old record before it empties the mirrors: the next sync restarts too."""
    sync(project)
    with duckdb.connect(str(project / DATABASE)) as connection:
        connection.execute("delete from raw.transactions where user_id = 43")
    run(project, full_refresh=True)
    kill_sync(project, "sync_staged", "--full")
    again = sync_result(project)
    assert again.restart is not None
    assert "user_transactions#[43]" not in online_store.items(project)
    assert_serves_the_extract(project, online_store)


def test_a_dropped_mirror_starts_the_store_afresh(project: Path, online_store: OnlineStoreTarget) -> None:
    sync(project)
    with duckdb.connect(str(project / DATABASE)) as connection:
        connection.execute("delete from raw.transactions where user_id = 43")
        mirrors = connection.execute(
            "select table_name from information_schema.tables where table_schema = 'featuresql' "
            "and table_name like 'online_%_user_transactions'"
        ).fetchall()
        connection.execute(f"drop table featuresql.{mirrors[0][0]}")
    run(project, full_refresh=True)
    assert "mirror of user_transactions" in (sync_result(project).restart or "")
    assert_serves_the_extract(project, online_store)


# -- reruns, deletions, corrections ------------------------------------------------------------


def test_a_full_refresh_of_unchanged_data_writes_nothing(project: Path, online_store: OnlineStoreTarget) -> None:
    sync(project)
    run(project, full_refresh=True)
    assert sync(project) == NOTHING


def test_deleted_and_corrected_events_reach_the_store(project: Path, online_store: OnlineStoreTarget) -> None:
    sync(project)
    with duckdb.connect(str(project / DATABASE)) as connection:
        connection.execute("delete from raw.transactions where user_id = 43")
        connection.execute(
            "update raw.transactions set amount = amount + 1000 where user_id = 42 "
            "and ts = (select max(ts) from raw.transactions where user_id = 42)"
        )
    run(project, full_refresh=True)
    result = sync_result(project)
    assert sum(m.deleted for m in result.models) > 0
    keys = online_store.items(project)
    assert "user_transactions#[43]" not in keys
    assert_serves_the_extract(project, online_store)


@pytest.mark.parametrize(
    "edit",
    [
        ("features/user_balances.sql", "ttl='30d'", "ttl='7d'"),  # shorter
        ("features/user_balances.sql", "ttl='30d'", "ttl='90d'"),  # longer
        ("features/user_transactions.sql", "data_delay='2h'", "data_delay='2d'"),
    ],
    ids=["ttl_shorter", "ttl_longer", "data_delay"],
)
def test_changed_settings_are_applied_to_stored_items(
    project: Path, online_store: OnlineStoreTarget, edit: tuple[str, str, str]
) -> None:
    sync(project)
    apply_edits(project, [edit])
    run(project)
    changed = sync(project)
    assert any(written for _, written, _ in changed.values()) or any(c for c, _, _ in changed.values())
    assert_serves_the_extract(project, online_store)


def test_a_model_taken_offline_loses_its_items(project: Path, online_store: OnlineStoreTarget) -> None:
    sync(project)
    apply_edits(project, [("features/user_balances.sql", "online=true,", "")])
    result = sync_result(project)
    assert result.removed == ("user_balances",)
    assert not any(key.startswith("user_balances#") for key in online_store.items(project))
    assert_serves_the_extract(project, online_store, models=("user_transactions", "user_spend_ratios"))


def test_a_removed_feature_leaves_the_items(project: Path, online_store: OnlineStoreTarget) -> None:
    sync(project)
    apply_edits(project, [("features/user_balances.sql", "    event_type as last_event_type,\n", "")])
    run(project, select=("user_balances",))
    sync(project)
    balances = [item for key, item in online_store.items(project).items() if key.startswith("user_balances#")]
    assert balances and not any("last_event_type" in item for item in balances)
    assert_serves_the_extract(project, online_store)


# -- the manifest and the items agree -----------------------------------------------------------


def test_the_manifest_covers_what_was_synced_and_no_more(project: Path, online_store: OnlineStoreTarget) -> None:
    sync(project)
    count = "{{ window_count(windows=['1d', '7d', '30d']) }}"
    apply_edits(project, [("features/user_transactions.sql", count, count.replace("'7d'", "'7d', '14d'"))])
    run(project, full_refresh=True, select=("user_transactions",))
    sync(project, select=("user_balances",))  # not the changed model
    with context(project) as ctx:
        manifest = read_manifest(ctx)
    assert "count_14d" not in manifest.models["user_transactions"].features  # the items have none yet
    reader = reader_for(manifest)
    reader.clock = NOW.timestamp
    status, body = reader.answer({"entities": {"user_id": [42]}, "features": ["user_transactions.count_14d"]})
    assert status == 404, body
    sync(project)
    assert_serves_the_extract(project, online_store)


def test_a_reader_of_another_schema_answers_409(project: Path, online_store: OnlineStoreTarget) -> None:
    """A reader packaged before a feature was retyped never reads the new items as the old type."""
    sync(project)
    with context(project) as ctx:
        old = read_manifest(ctx)
    apply_edits(
        project,
        [("features/user_spend_ratios.sql", "as transactions_per_day_7d", "as transactions_per_day_7d_renamed")],
    )
    run(project, select=("user_spend_ratios",))
    sync(project)
    reader = reader_for(old)
    reader.clock = NOW.timestamp
    status, body = reader.answer({"entities": {"user_id": [42]}, "features": ["user_spend_ratios"]})
    assert status == 409 and "package-lambda" in body, body
    status, _ = reader.answer({"entities": {"user_id": [42]}, "features": ["user_transactions"]})
    assert status == 200  # the unchanged model still reads


# -- time edges ------------------------------------------------------------------------------------


def test_an_item_stops_answering_at_its_expiry_exactly(project: Path, online_store: OnlineStoreTarget) -> None:
    sync(project)
    with context(project) as ctx:
        reader = reader_for(read_manifest(ctx))
    item = online_store.items(project)["user_balances#[42]"]
    expiry = int(item["_exp"]["N"])

    def balance(micros: int) -> object:
        reader.clock = lambda: micros / 1_000_000
        status, body = reader.answer({"entities": {"user_id": [42]}, "features": ["user_balances.balance"]})
        assert status == 200, body
        return json.loads(body)["results"][0]["features"]["user_balances__balance"]

    assert balance(expiry - 1) is not None
    assert balance(expiry) is None


def test_until_start_plus_data_delay_the_reader_answers_null(project: Path, online_store: OnlineStoreTarget) -> None:
    """The first boundary at ``start`` is available only ``data_delay`` (2 h) later: NULL until then."""
    start = (NOW - timedelta(days=3)).replace(hour=0)
    edit = ("features/user_transactions.sql", "online=true", f"online=true, start='{start:%Y-%m-%d}'")
    apply_edits(project, [edit])
    run(project, full_refresh=True, select=("user_transactions",))
    early = start + timedelta(hours=1)
    sync(project, early)
    with context(project) as ctx:
        reader = reader_for(read_manifest(ctx))
    reader.clock = early.timestamp
    status, body = reader.answer({"entities": {"user_id": [42]}, "features": ["user_transactions.count_30d"]})
    assert status == 200 and json.loads(body)["results"][0]["features"] == {"user_transactions__count_30d": None}
    assert_serves_the_extract(project, online_store, early)
    sync(project, start + timedelta(hours=3))
    assert_serves_the_extract(project, online_store, start + timedelta(hours=3))


def test_before_start_the_reader_answers_null_as_the_extract(project: Path, online_store: OnlineStoreTarget) -> None:
    start = NOW + timedelta(days=30)
    apply_edits(project, [("features/user_transactions.sql", "online=true", f"online=true, start='{start:%Y-%m-%d}'")])
    run(project, full_refresh=True, select=("user_transactions",))
    sync(project)
    with context(project) as ctx:
        reader = reader_for(read_manifest(ctx))
    reader.clock = NOW.timestamp
    status, body = reader.answer({"entities": {"user_id": [42]}, "features": ["user_transactions.count_7d"]})
    assert status == 200
    assert json.loads(body)["results"][0]["features"] == {"user_transactions__count_7d": None}
    assert_serves_the_extract(project, online_store)


def test_a_reader_is_packaged_before_the_first_sync(built: Path, tmp_path: Path) -> None:
    """The zip's manifest comes from the project as it is, with the schema versions a sync will write."""
    project = Path(shutil.copytree(built, tmp_path / "p"))
    use_dynamodb(project, "http://127.0.0.1:9", "never_synced")  # nothing is contacted
    with context(project) as ctx:
        manifest = current_manifest(ctx)
    archive, policy = package_lambda(manifest, tmp_path / "reader.zip")
    with zipfile.ZipFile(archive) as opened:
        packaged = json.loads(opened.read("online_manifest.json"))
    assert set(packaged["models"]) == set(ONLINE)
    assert packaged["store"]["table"] == "never_synced" and "endpoint_url" not in packaged["store"]
    assert json.loads(policy.read_text())["Statement"][0]["Action"] == ["dynamodb:BatchGetItem"]


# -- refused: what cannot be served right -------------------------------------------------------


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            ("features/user_balances.sql", "    user_id,\n", "    cast(user_id as varchar) as user_id,\n"),
            r"online model 'user_balances': key 'user_id' is (TEXT|VARCHAR) but the entity declares bigint",
        ),
        (
            ("features/user_spend_ratios.sql", "    ts,\n", "    ts,\n    *,\n"),
            r"online model 'user_spend_ratios' selects \*: list its columns",
        ),
        (
            ("features/user_spend_ratios.sql", "as max_to_avg_amount", "as _exp"),
            r"online model 'user_spend_ratios' has a column named '_exp'",
        ),
    ],
    ids=["key_type", "select_star", "reserved"],
)
def test_online_models_that_cannot_be_served_right_do_not_compile(
    tmp_path: Path, edit: tuple[str, str, str], message: str
) -> None:
    project = copy_example(tmp_path / "p", [*ONLINE_EDITS, edit])
    with pytest.raises(CompileError, match=message) as raised, Context(project, offline=True) as ctx:
        ctx.compiled  # noqa: B018
    assert raised.value.path is not None and raised.value.path.name == Path(edit[0]).name


def test_a_key_typed_unlike_the_entity_in_the_warehouse_is_refused_by_sync(project: Path) -> None:
    """Where the compiler cannot infer the type (a chained model), sync reads it from the table."""
    with duckdb.connect(str(project / DATABASE)) as connection:
        connection.execute("alter table main.user_spend_ratios alter user_id type varchar")
    with pytest.raises(ConfigError, match=r"user_spend_ratios.*key 'user_id' is VARCHAR.*declares bigint"):
        sync(project)


def test_string_keys_with_commas_are_one_entity() -> None:
    flags = OnlineModel("flags", (("account_id", "string"),), {"plan": OnlineFeature("plan", "string")})
    manifest = Manifest("p", "t", {"type": "local", "path": ":memory:"}, {"flags": flags})
    request = parse_query({"account_id": ["a,b", "c"], "features": ["flags"]}, manifest)
    assert request.entities == ({"account_id": "a,b"}, {"account_id": "c"})


def test_an_item_over_the_stores_size_limit_is_rejected_alone(
    project: Path, online_store: OnlineStoreTarget, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DynamoDB takes items up to 400 KB: a bigger one fails the sync naming it, its neighbours are written,
    every sync tries it again, and once it fits it is written. (The local store has no limit: one is set
    here for the test, through the same ``refusal`` hook.)"""
    if online_store.name == "local":
        from featuresql.adapters.local_store import LocalStore

        monkeypatch.setattr(LocalStore, "refusal", lambda self, item: "too big" if len(str(item)) > 400_000 else None)
    note = "case when user_id = 42 then repeat('x', 500000) else 'short' end as note"
    model = (
        "{{ config(entity='user', timestamp='ts', online=true) }}\n"
        f"select user_id, ts, {note}\nfrom {{{{ ref('user_spend_ratios') }}}}\n"
    )
    apply_edits(project, [("features/user_notes.sql", None, model)])
    run(project, select=("user_notes",))
    for _ in range(2):  # refused, and tried again by the next sync
        with pytest.raises(ExecutionError, match=r"but model user_notes, entity \[42\]: .*(too big|over DynamoDB)"):
            sync(project)
    notes = {key for key in online_store.items(project) if key.startswith("user_notes#")}
    assert len(notes) > 100 and "user_notes#[42]" not in notes
    apply_edits(project, [("features/user_notes.sql", "500000", "5")])
    run(project, select=("user_notes",))
    assert sync(project)["user_notes"][1] >= 1
    assert "user_notes#[42]" in online_store.items(project)
    assert sync(project) == {**NOTHING, "user_notes": (0, 0, 0)}
    assert_serves_the_extract(project, online_store, models=(*ONLINE, "user_notes"))


def test_a_dry_run_counts_the_writes_and_deletions_and_changes_nothing(
    project: Path, online_store: OnlineStoreTarget
) -> None:
    sync(project)
    with duckdb.connect(str(project / DATABASE)) as connection:
        connection.execute("delete from raw.transactions where user_id = 43")
    run(project, full_refresh=True)
    before = online_store.all_items(project)
    with context(project) as ctx:
        preview = preview_sync(ctx, now=NOW)
    assert preview.restart is None and preview.changes["user_transactions"][1] == 1
    assert online_store.all_items(project) == before
    result = {m.model: (m.written, m.deleted) for m in sync_result(project).models}
    assert {name: counts for name, counts in preview.changes.items()} == result


def test_a_retyped_feature_is_resent_once(project: Path, online_store: OnlineStoreTarget) -> None:
    """The mirror's column types follow the model's: 2.43 is never compared with a stored 2 forever."""
    sync(project)
    apply_edits(
        project,
        [("features/user_spend_ratios.sql", "count_7d / 7.0 as", "cast(count_7d as integer) as")],
    )
    run(project, select=("user_spend_ratios",))
    with context(project) as ctx:
        assert read_manifest(ctx).models["user_spend_ratios"].features["transactions_per_day_7d"].kind == "float"
    assert sync(project)["user_spend_ratios"][1] > 100
    with context(project) as ctx:
        assert read_manifest(ctx).models["user_spend_ratios"].features["transactions_per_day_7d"].kind == "integer"
    assert sync(project) == NOTHING
    assert_serves_the_extract(project, online_store)
