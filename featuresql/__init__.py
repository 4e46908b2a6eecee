"""featuresql: a warehouse-pushdown, dbt-style feature framework.

Importing the package is cheap: the compiler, adapters and drivers load on use.

    >>> import featuresql
    >>> from featuresql import Context
    >>> with Context("path/to/project") as context:
    ...     context.run()
    >>> training = featuresql.extract("labels.parquet", ["user_transactions"], project_dir="path/to/project")
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

__version__ = "0.1.0"

if TYPE_CHECKING:
    import pyarrow as pa

    from featuresql.context import Context


def extract(
    spine: Any,
    features: str | Sequence[str] = (),
    *,
    service: str | None = None,
    project_dir: str | Path = ".",
    target: str | None = None,
    timestamp_column: str | None = None,
    variables: dict[str, Any] | None = None,
    strict: bool = False,
    output: Literal["arrow", "pandas"] = "arrow",
    decimals: Literal["float", "decimal"] = "float",
) -> Any:
    """A leak-free training set: each spine row with the features available at its time.

    Args:
        spine: a warehouse table name, a ``.parquet``/``.csv`` path, a pandas DataFrame
            or a pyarrow Table, with the entities' key columns and a time column.
        features: ``"model"`` or ``"model.feature"`` items, comma-separated or a list.
        service: a feature service (``"NAME"`` or ``"NAME@VERSION"``) instead of ``features``:
            its features, with its output names.
        project_dir: the project folder (or any folder inside it).
        target: the profiles.yml target (default: the profile's default).
        timestamp_column: the spine's time column (default: found by name).
        variables: project vars, as ``--vars``.
        strict: refuse spine rows past what a model has computed (a ``ConfigError``)
            instead of returning NULL features for them.
        output: ``"arrow"`` (a ``pyarrow.Table``) or ``"pandas"`` (a ``DataFrame``; needs
            ``pip install 'featuresql[pandas]'``).
        decimals: with ``output="pandas"``: ``"float"`` turns DECIMAL columns into float64
            (what scikit-learn and plotting libraries take; the nearest double of each
            value, as ``float(Decimal)``), ``"decimal"`` keeps Python ``Decimal`` objects, exact.

    Returns:
        A pyarrow Table or a pandas DataFrame: every spine row in the
        spine's order, then one column ``<model>__<feature>`` per feature. Spine rows
        past what a model has computed (after its last run, in a gap) have NULL
        features for it; they are counted per model in the schema metadata
        ``featuresql.uncomputed`` (JSON, ``{}`` when there are none), and each model
        with any raises an ``UncomputedRowsWarning``.
    """
    import json
    import warnings

    from featuresql.compile.features import feature_names
    from featuresql.context import Context
    from featuresql.extracts.frames import check_output

    check_output(output, decimals)  # before the extract runs: a bad option costs nothing

    with Context(project_dir, target=target, variables=variables) as context:
        if bool(service) == bool(feature_names(features)):
            raise ValueError("give either features or service")
        result = context.extract(spine, features, timestamp_column=timestamp_column, strict=strict, service=service)
    assert result.table is not None
    for message in result.warnings:
        warnings.warn(message, UncomputedRowsWarning, stacklevel=2)
    metadata = {**(result.table.schema.metadata or {}), b"featuresql.uncomputed": json.dumps(result.uncomputed)}
    table = result.table.replace_schema_metadata(metadata)
    return table if output == "arrow" else to_pandas(table, decimals=decimals)


def to_pandas(table: pa.Table, *, decimals: Literal["float", "decimal"] = "float") -> Any:
    """A DataFrame of an extract (see ``featuresql.extracts.frames.to_pandas``)."""
    from featuresql.extracts.frames import to_pandas as convert

    return convert(table, decimals=decimals)


class UncomputedRowsWarning(UserWarning):
    """Spine rows past what a model has computed got NULL features (``featuresql.extract``)."""


def __getattr__(name: str) -> Any:
    if name == "Context":
        from featuresql.context import Context

        return Context
    raise AttributeError(f"module 'featuresql' has no attribute {name!r}")


__all__ = ["Context", "UncomputedRowsWarning", "__version__", "extract", "to_pandas"]
