"""The built-in ``null_keys`` test of every model with entity keys: no input row lacks a key.

A row with a NULL entity key belongs to no entity. ``featuresql run`` leaves
such rows out (a window model drops them from its events, a snapshot model's
table never holds one: ``featuresql.run.statements``) and notes how many in the
run log; this test makes them a failure, so a broken join or source is noticed
instead of silently shrinking the features.

It counts, with one query, the rows of the model's input with a NULL in any key
column: the row-level events query of a window model, the whole query of a
snapshot model. Models without an entity (labels, training sets) have no keys
and no such test.
"""

from __future__ import annotations

from dataclasses import dataclass

from featuresql.adapters.base import WarehouseAdapter
from featuresql.compile.models import CompiledModel, CompiledProject
from featuresql.run.statements import key_label, null_key_count
from featuresql.testing.cases import Outcome, TestCase, TestEnv


def null_keys_cases(compiled: CompiledProject) -> list[TestCase]:
    """One built-in ``null_keys`` test per model with entity keys, in dependency order."""
    return [
        TestCase(
            name=f"null_keys_{name}",
            kind="null_keys",
            test_type="data",
            check=_NullKeys(model, compiled.dialect),
            models=(name,),
            description=f"no input row of {name} has a NULL {key_label(model.settings.keys)}",
        )
        for name, model in compiled.models.items()
        if model.settings.keys
    ]


@dataclass(frozen=True)
class _NullKeys:
    """The check of one model (a callable, so a TestCase can hold it)."""

    model: CompiledModel
    dialect: str

    def __call__(self, env: TestEnv) -> Outcome:
        return check_null_keys(self.model, env.context.adapter, self.dialect)


def check_null_keys(model: CompiledModel, adapter: WarehouseAdapter, dialect: str) -> Outcome:
    """Count the input rows of ``model`` with a NULL key; each one is a failure."""
    query = null_key_count(model, None, dialect)
    assert query is not None, "only models with entity keys have a null_keys test"
    count = int(adapter.fetch_arrow(query).column(0)[0].as_py())
    return Outcome(count, _message(model, count), sql=query.sql(dialect, pretty=True))


def _message(model: CompiledModel, count: int) -> str:
    keys = model.settings.keys
    if not count:
        return f"no input row of {model.name} has a NULL {key_label(keys)}"
    rows = "row" if count == 1 else "rows"
    where = " and ".join(f"{k} is not null" for k in keys)
    return (
        f"{model.name}: {count} input {rows} with a NULL {key_label(keys)} (left out of its table); "
        f"filter them in the model's SQL (`where {where}`) or fix the source"
    )
