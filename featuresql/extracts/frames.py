"""Extracts as pandas DataFrames, for notebooks (``featuresql.extract(..., output="pandas")``).

pandas is optional (``featuresql[pandas]``): the CLI, warehouse jobs and the reader
never need it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pyarrow as pa

OUTPUTS = ("arrow", "pandas")
DECIMALS = ("float", "decimal")


def check_output(output: str, decimals: str) -> None:
    """Refuse an unknown option, or pandas output without pandas, before any work is done."""
    if output not in OUTPUTS:
        raise ValueError(f"output must be 'arrow' or 'pandas', not {output!r}")
    if decimals not in DECIMALS:
        raise ValueError(f"decimals must be 'float' or 'decimal', not {decimals!r}")
    if output == "pandas":
        _require_pandas()


def to_pandas(table: pa.Table, *, decimals: Literal["float", "decimal"] = "float") -> Any:
    """A DataFrame of an extract: DECIMAL columns as float64 (``decimals="float"``: the nearest
    double, as ``float(Decimal)``) or ``Decimal`` objects; the uncomputed counts in
    ``DataFrame.attrs["featuresql.uncomputed"]``."""
    import pyarrow as pa
    import pyarrow.compute as pc

    check_output("pandas", decimals)
    if decimals == "float":
        for index, field in enumerate(table.schema):
            if pa.types.is_decimal(field.type):
                # Through the decimal text: Arrow's direct cast multiplies by 10^-scale and can miss
                # the nearest double (40.30 -> 40.300000000000004); parsing the text never does.
                floats = pc.cast(pc.cast(table.column(index), pa.string()), pa.float64())
                table = table.set_column(index, field.with_type(pa.float64()), floats)
    frame = table.to_pandas()
    uncomputed = (table.schema.metadata or {}).get(b"featuresql.uncomputed")
    frame.attrs["featuresql.uncomputed"] = json.loads(uncomputed) if uncomputed else {}
    return frame


def _require_pandas() -> None:
    try:
        import pandas  # noqa: F401  (pyarrow's to_pandas needs it)
    except ImportError:
        raise ImportError("output='pandas' needs pandas: pip install 'featuresql[pandas]'") from None
