"""What each kind of model may be and set: an on-demand model has no table, so nothing refs it,
it has no table settings and no data tests, and only it declares request columns."""

from __future__ import annotations

from collections.abc import Mapping

from featuresql.errors import CompileError
from featuresql.project.config import ModelConfig, ModelSpec
from featuresql.project.jinja import ModelContext
from featuresql.project.loader import ModelFile

# Settings of a model's table and its rows, which an on-demand model has not.
_TABLE_SETTINGS = frozenset(
    {"entity", "timestamp", "grain", "start", "data_delay", "lookback", "batch_size", "online", "ttl"}
    | {"tie_break", "on_change", "freshness", "stream_grain", "stream_delay", "stream_horizon"}
)


def check_kinds(
    models: Mapping[str, ModelFile],
    configs: Mapping[str, ModelConfig],
    contexts: Mapping[str, ModelContext],
    on_demand: set[str],
) -> None:
    """Nothing refs an on-demand model (it has no table); request= and table settings go with one kind only."""
    for name in sorted(configs):
        model, config = models[name], configs[name]
        for ref in contexts[name].refs:
            if ref in on_demand:
                raise CompileError(
                    f"model {name!r} refs {ref!r}, an on-demand model, which has no table: compute what it "
                    "needs in a snapshot model, or use the on-demand feature in a service or extract",
                    path=model.path,
                    line=contexts[name].ref_lines.get(ref),
                )
        if name in on_demand and model.spec is not None and _has_data_tests(model.spec):
            raise CompileError(
                f"on-demand model {name!r} has data tests in YAML, but no table to test: test the models "
                "it reads instead",
                path=model.spec_path,
                line=model.spec_line,
            )
        if name in on_demand:
            table_settings = sorted(config.model_fields_set & _TABLE_SETTINGS)
            if table_settings:
                raise CompileError(
                    f"on-demand model {name!r} sets {table_settings[0]!r}, which it does not have: it has no "
                    "table; its entity, times and online serving are those of the models it refs",
                    path=model.path,
                    line=contexts[name].config_line,
                )
        elif config.request:
            raise CompileError(
                f"model {name!r} declares request columns, which only an on-demand model reads: add "
                "kind='on_demand' to its config, or remove request=",
                path=model.path,
                line=contexts[name].config_line,
            )


def _has_data_tests(spec: ModelSpec) -> bool:
    return bool(spec.tests or spec.data_tests or any(c.tests or c.data_tests for c in spec.columns))
