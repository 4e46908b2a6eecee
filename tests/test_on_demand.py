"""On-demand features: the same SQL offline (in the extract, in DuckDB) and online (the reader's evaluator).

On the built example (``features/advance_request.sql``):

- every on-demand feature, compiled with the warehouse types of the features it reads,
  evaluated by the reader's evaluator for hypothesis-generated request values and stored
  features (NULLs, zeros, negatives, the type's extremes), equals DuckDB's value of the
  same SQL over a one-row table of those values: doubles bit for bit, decimals exactly;
- the extract computes each on-demand column from the point-in-time values it joined:
  DuckDB re-evaluating the expression over the extract's own input columns agrees;
- the reader and the extract agree for 60 users with random amounts at the same time;
- an overflow fails offline and online alike (DuckDB's error; the reader's 422).
"""

from __future__ import annotations

import json
import random
import shutil
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlglot import exp
from test_expressions import same

from featuresql.cli.main import cli as command
from featuresql.compile.on_demand import duckdb_type, programs
from featuresql.context import Context
from featuresql.serving.expressions import EvaluationError, evaluate
from featuresql.serving.manifest import Manifest
from featuresql.serving.reader import Reader
from featuresql.serving.tables import open_table

NOW = "2026-06-30"
AT = datetime(2026, 6, 30)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, copy_example_to: Any, small_vars: str) -> Path:
    project: Path = copy_example_to(tmp_path_factory.mktemp("on_demand") / "cash_advance")
    for args in (["run", "--now", NOW], ["sync", "--now", NOW]):
        result = CliRunner().invoke(command, ["--project-dir", str(project), "--vars", small_vars, *args])
        assert result.exit_code == 0, result.output
    return project


@pytest.fixture(scope="module")
def typed(built: Path) -> list[tuple[str, exp.Expr, dict[str, str], list[Any]]]:
    """Each on-demand feature of the example: (name, expression, its columns' DuckDB types, program),
    typed with the warehouse types of the features it reads, as sync types the reader's programs."""
    with Context(built) as context:
        features = []
        for model in context.compiled.on_demand.values():
            inputs = {
                (source, feature): context.adapter.table_columns(context.compiled.models[source].relation)[feature]
                for source, feature in model.inputs
            }
            compiled = programs(model, inputs, "duckdb")
            types = {f"{source}.{feature}": kind for (source, feature), kind in inputs.items()}
            types |= {f"request.{name}": duckdb_type(kind, "duckdb") for name, kind in model.request.items()}
            features += [(f"{model.name}.{f.name}", f.expression, types, compiled[f.name]) for f in model.features]
    assert features, "the example has on-demand features"
    return features


def sync(project: Path, small_vars: str) -> None:
    result = CliRunner().invoke(command, ["--project-dir", str(project), "--vars", small_vars, "sync", "--now", NOW])
    assert result.exit_code == 0, result.output


def reader_of(project: Path) -> Reader:
    """The reader of the project's last sync, reading as of ``AT``."""
    manifest = Manifest.load(project / "target" / "online" / "dev" / "manifest.json")
    return Reader(manifest, open_table(manifest.store), clock=lambda: AT.replace(tzinfo=UTC).timestamp())


def values_of(kind: str) -> st.SearchStrategy[Any]:
    """Values of a DuckDB type: NULL, zero, signs, the type's extremes."""
    if kind.startswith("DECIMAL"):
        precision, scale = (int(part) for part in kind[8:-1].split(","))
        top = Decimal(10) ** (precision - scale) - Decimal(1).scaleb(-scale)
        return st.one_of(
            st.none(),
            st.sampled_from([Decimal(0), top, -top, Decimal(1).scaleb(-scale)]),
            st.decimals(min_value=-top, max_value=top, places=scale, allow_nan=False),
        )
    if kind == "DOUBLE":
        return st.one_of(st.none(), st.sampled_from([0.0, -0.0, 1e-300, 1e300]), st.floats(allow_nan=False))
    if kind in ("BIGINT", "INTEGER"):
        bits = 64 if kind == "BIGINT" else 32
        return st.one_of(st.none(), st.integers(-(2 ** (bits - 1)), 2 ** (bits - 1) - 1))
    if kind == "BOOLEAN":
        return st.one_of(st.none(), st.booleans())
    return st.one_of(st.none(), st.text(max_size=6))


def duckdb_result(expression: Any, types: dict[str, str], row: dict[str, Any]) -> tuple[str, Any]:
    """DuckDB's value of the on-demand SQL over a one-row table holding ``row``."""
    names = {column: column.replace(".", "__") for column in types}
    rewritten = expression.copy().transform(
        lambda node: exp.column(names[f"{node.table}.{node.name}"]) if isinstance(node, exp.Column) else node
    )
    connection = duckdb.connect()
    try:
        connection.execute(f"CREATE TABLE request_row ({', '.join(f'{names[c]} {t}' for c, t in types.items())})")
        connection.execute(f"INSERT INTO request_row VALUES ({', '.join('?' * len(types))})", [row[c] for c in types])
        return "value", connection.execute(f"SELECT {rewritten.sql('duckdb')} FROM request_row").fetchone()[0]
    except duckdb.Error as exc:
        return "error", str(exc).splitlines()[0]
    finally:
        connection.close()


@settings(
    max_examples=300, derandomize=True, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_every_example_feature_matches_duckdb(typed: list[Any], data: st.DataObject) -> None:
    for name, expression, types, program in typed:
        row = {column: data.draw(values_of(kind), label=column) for column, kind in types.items()}
        try:
            ours: tuple[str, Any] = ("value", evaluate(program, row))
        except EvaluationError as exc:
            ours = ("error", str(exc))
        theirs = duckdb_result(expression, types, row)
        assert ours[0] == theirs[0], f"{name} with {row}: ours {ours}, DuckDB {theirs}"
        if ours[0] == "value":
            assert same(ours[1], theirs[1]), f"{name} with {row}: ours {ours[1]!r}, DuckDB {theirs[1]!r}"


def spine(users: list[int], amounts: list[Decimal | None], times: list[datetime]) -> pa.Table:
    return pa.table(
        {
            "user_id": pa.array(users, pa.int64()),
            "ts": pa.array(times, pa.timestamp("us")),
            "advance_amount": pa.array(amounts, pa.decimal128(12, 2)),
        }
    )


def test_the_extract_computes_each_row_from_the_values_it_joined(built: Path) -> None:
    import featuresql

    chance = random.Random(7)
    users = [chance.randrange(1, 600) for _ in range(300)]
    amounts = [None if chance.random() < 0.1 else Decimal(chance.randrange(0, 10**6)).scaleb(-2) for _ in users]
    times = [datetime(2026, chance.randrange(1, 7), chance.randrange(1, 29), chance.randrange(24)) for _ in users]
    inputs = ["user_transactions.amount_avg_30d", "user_transactions.amount_max_7d"]
    table = featuresql.extract(spine(users, amounts, times), ["advance_request", *inputs], project_dir=built)
    connection = duckdb.connect()
    connection.register("extracted", table)
    expected = connection.execute(
        "SELECT advance_amount / nullif(user_transactions__amount_avg_30d, 0), "
        "advance_amount > coalesce(user_transactions__amount_max_7d, 0) FROM extracted"
    ).fetchall()
    got = list(
        zip(
            table.column("advance_request__amount_vs_avg_spend_30d").to_pylist(),
            table.column("advance_request__above_max_spend_7d").to_pylist(),
            strict=True,
        )
    )
    assert got == expected
    assert sum(ratio is not None for ratio, _ in got) > 100 and {flag for _, flag in got} == {True, False, None}


def test_the_reader_answers_what_the_extract_computed(built: Path) -> None:
    import featuresql

    chance = random.Random(11)
    users = chance.sample(range(1, 600), 60)
    amounts = [None if n % 9 == 0 else Decimal(chance.randrange(0, 10**7)).scaleb(-2) for n in range(60)]
    offline = featuresql.extract(spine(users, amounts, [AT] * 60), ["advance_request"], project_dir=built).to_pylist()
    reader = reader_of(built)
    entities = [
        {"user_id": u, "advance_amount": None if a is None else str(a)} for u, a in zip(users, amounts, strict=True)
    ]
    status, body = reader.answer({"features": ["advance_request"], "entities": entities})
    assert status == 200, body
    online = json.loads(body)["results"]
    for row, result in zip(offline, online, strict=True):
        for feature in ("amount_vs_avg_spend_30d", "above_max_spend_7d"):
            name = f"advance_request__{feature}"
            assert same(result["features"][name], row[name]), (row, result)
    assert sum(row["advance_request__amount_vs_avg_spend_30d"] is not None for row in offline) > 20


def test_an_overflow_fails_offline_and_online(built: Path, tmp_path: Path, small_vars: str) -> None:
    project = tmp_path / "cash_advance"
    shutil.copytree(built, project)
    model = project / "features" / "advance_request.sql"
    model.write_text(
        "{{ config(kind='on_demand', request={'units': 'bigint'}) }}\n"
        "select request.units * 4611686018427387904 + user_transactions.count_7d as scaled\n"
        "from {{ ref('user_transactions') }}\n"
    )
    (project / "features" / "services.yml").unlink()
    runner = CliRunner()
    result = runner.invoke(command, ["--project-dir", str(project), "--vars", small_vars, "sync", "--now", NOW])
    assert result.exit_code == 0, result.output
    import featuresql

    table = pa.table({"user_id": [42], "ts": pa.array([AT], pa.timestamp("us")), "units": pa.array([2], pa.int64())})
    with pytest.raises(Exception, match="Overflow"):
        featuresql.extract(table, ["advance_request"], project_dir=project)
    reader = reader_of(project)
    status, body = reader.answer({"features": ["advance_request"], "entities": [{"user_id": 42, "units": 2}]})
    assert status == 422 and "advance_request.scaled of entity 0" in json.loads(body)["error"]["message"]
    status, body = reader.answer({"features": ["advance_request"], "entities": [{"user_id": 42, "units": 1}]})
    assert status == 200 and json.loads(body)["results"][0]["features"]["advance_request__scaled"] > 2**62


def test_times_from_the_request_agree_offline_and_online(built: Path, tmp_path: Path, small_vars: str) -> None:
    """A TIMESTAMP request column through extract and reader: extraction, intervals, differences."""
    import featuresql

    project = tmp_path / "cash_advance"
    shutil.copytree(built, project)
    (project / "features" / "services.yml").unlink()
    (project / "features" / "advance_request.sql").write_text(
        "{{ config(kind='on_demand', request={'requested_at': 'timestamp', 'advance_amount': 'decimal(12,2)'}) }}\n"
        "select\n"
        "    extract(isodow from request.requested_at) >= 6 as on_a_weekend,\n"
        "    request.requested_at + interval 1 month as repay_by,\n"
        "    date_diff('hour', date_trunc('day', request.requested_at), request.requested_at)\n"
        "        + user_transactions.count_7d as hour_plus_count,\n"
        "    cast(request.requested_at as date) as requested_on\n"
        "from {{ ref('user_transactions') }}\n"
    )
    sync(project, small_vars)
    moments = [datetime(2026, 1, 31, 23, 59, 59, 999_999), datetime(2026, 6, 27, 9), datetime(2024, 2, 29, 0, 30), None]
    users = [42, 77, 150, 3]
    spine = pa.table(
        {
            "user_id": pa.array(users, pa.int64()),
            "ts": pa.array([AT] * 4, pa.timestamp("us")),
            "requested_at": pa.array(moments, pa.timestamp("us")),
            "advance_amount": pa.array([Decimal(1)] * 4, pa.decimal128(12, 2)),
        }
    )
    offline = featuresql.extract(spine, ["advance_request"], project_dir=project).to_pylist()
    reader = reader_of(project)
    entities = [
        {"user_id": u, "requested_at": m and m.isoformat() + "Z", "advance_amount": "1.00"}
        for u, m in zip(users, moments, strict=True)
    ]
    status, body = reader.answer({"features": ["advance_request"], "entities": entities})
    assert status == 200, body
    for row, result in zip(offline, json.loads(body)["results"], strict=True):
        online = result["features"]
        assert online["advance_request__on_a_weekend"] == row["advance_request__on_a_weekend"]
        assert online["advance_request__hour_plus_count"] == row["advance_request__hour_plus_count"]
        repay_by, requested_on = row["advance_request__repay_by"], row["advance_request__requested_on"]
        assert online["advance_request__repay_by"] == (repay_by and repay_by.isoformat() + "Z")
        assert online["advance_request__requested_on"] == (requested_on and requested_on.isoformat())
    assert offline[0]["advance_request__repay_by"] == datetime(2026, 2, 28, 23, 59, 59, 999_999)  # the month's end
    assert [row["advance_request__on_a_weekend"] for row in offline] == [True, True, False, None]


def test_an_alias_named_like_a_hidden_input_reads_the_right_column(built: Path, tmp_path: Path) -> None:
    """A service renames count_7d to the default name of amount_max_7d, which advance_request reads
    without listing it: the extract must still compare the amount with amount_max_7d."""
    import featuresql

    project = tmp_path / "cash_advance"
    shutil.copytree(built, project)
    (project / "features" / "services.yml").write_text(
        "version: 1\nservices:\n  - name: clash\n    features:\n"
        "      - user_transactions.count_7d as user_transactions__amount_max_7d\n"
        "      - advance_request.above_max_spend_7d\n"
    )
    spine = pa.table(
        {
            "user_id": pa.array([42], pa.int64()),
            "ts": pa.array([AT], pa.timestamp("us")),
            "advance_amount": pa.array([Decimal("150.00")], pa.decimal128(12, 2)),
        }
    )
    row = featuresql.extract(spine, service="clash", project_dir=project).to_pylist()[0]
    plain = featuresql.extract(spine, ["user_transactions.amount_max_7d"], project_dir=project).to_pylist()[0]
    maximum, count = plain["user_transactions__amount_max_7d"], row["user_transactions__amount_max_7d"]
    assert maximum != count  # the alias holds count_7d
    assert row["advance_request__above_max_spend_7d"] == (Decimal("150.00") > maximum)


def test_a_reader_with_other_programs_than_the_last_sync_refuses(built: Path, tmp_path: Path, small_vars: str) -> None:
    """A reader packaged before the on-demand SQL changed (then synced) answers 409, never the old value;
    one whose model the last sync did not serve answers 503."""
    project = tmp_path / "cash_advance"
    shutil.copytree(built, project)
    path = project / "target" / "online" / "dev" / "manifest.json"
    old = Manifest.load(path)
    model = project / "features" / "advance_request.sql"
    model.write_text(model.read_text().replace("nullif(user_transactions.amount_avg_30d, 0)", "2"))
    sync(project, small_vars)
    request = {"features": ["advance_request"], "entities": [{"user_id": 42, "advance_amount": "150.00"}]}
    clock = lambda: AT.replace(tzinfo=UTC).timestamp()  # noqa: E731
    new = Manifest.load(path)
    table = open_table(new.store)  # the copy's store (the old manifest names the original project's)
    status, body = Reader(old, table, clock=clock).answer(request)
    assert status == 409 and "advance_request was synced as" in json.loads(body)["error"]["message"], body
    new = Manifest.load(path)
    status, body = Reader(new, open_table(new.store), clock=clock).answer(request)
    assert (
        status == 200 and json.loads(body)["results"][0]["features"]["advance_request__amount_vs_avg_spend_30d"] == 75
    )
    # a program typed otherwise (as after a stored input's type changed): other programs, refused
    retyped = Manifest.from_json(json.loads(path.read_text().replace('"decimal(12,2)"', '"decimal(12,3)"')))
    assert retyped.on_demand["advance_request"].digest != new.on_demand["advance_request"].digest
    status, body = Reader(retyped, table, clock=clock).answer(request)
    assert status == 409, body


def test_an_on_demand_model_over_an_offline_model_says_why_it_is_not_served(
    built: Path, tmp_path: Path, small_vars: str
) -> None:
    project = tmp_path / "cash_advance"
    shutil.copytree(built, project)
    (project / "features" / "credit_use.sql").write_text(
        "{{ config(kind='on_demand', request={'advance_amount': 'decimal(12,2)'}) }}\n"
        "select request.advance_amount / nullif(user_profile.credit_limit, 0) as share_of_limit\n"
        "from {{ ref('user_profile') }}\n"
    )
    sync(project, small_vars)
    reader = reader_of(project)
    status, body = reader.answer({"features": ["credit_use"], "entities": [{"user_id": 42, "advance_amount": 1}]})
    assert (status, json.loads(body)["error"]["message"]) == (
        404,
        "on-demand model 'credit_use' is not served: it reads user_profile, which is not online: "
        "set config(online=true) there and sync",
    )


@pytest.mark.parametrize(
    ("value", "kind", "problem"),
    [
        (Decimal("1e5000000"), "int64", "is an integer column (int64): the number is out of its range"),
        (
            Decimal("9223372036854775808"),
            "int64",
            "is an integer column (int64): 9223372036854775808 is out of its range",
        ),
        ("2026-06-30T10:00:00+05:30", "timestamp", "is not UTC ISO text"),
        ("0001-01-01T00:00:00+05:30", "timestamp", "is not UTC ISO text"),
        (10**400, "float", "is a double column: the number is out of its range"),
        (Decimal("-0.00"), "decimal(12,2)", None),
    ],
)
def test_request_values_are_refused_fast_and_cleanly(value: Any, kind: str, problem: str | None) -> None:
    """Values a client may send that must be a 400 at once (no huge integers built, no crash), or
    read as the warehouse stores them (-0.00 is 0.00)."""
    from featuresql.serving.request_columns import RequestValueError, request_value

    if problem is None:
        assert str(request_value(value, kind, text=False)) == "0.00"
        return
    with pytest.raises(RequestValueError, match=problem.replace("(", r"\(").replace(")", r"\)")):
        request_value(value, kind, text=False)
