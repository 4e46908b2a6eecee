"""``featuresql push``'s input: the records of a JSON lines, CSV or parquet file, or of standard input.

JSON lines is one JSON object per line (blank lines skipped); a line that is not JSON is
a one-line error naming the line, and nothing is pushed. CSV has a header of column
names; every value is its text, and an empty field is NULL. Parquet values are taken
as their types, times as ISO text. Standard input (``-``) is JSON lines.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from featuresql.errors import ConfigError

CSV_TEXT = "csv"  # the records' values are text: how push reads them (``read_record(..., text=True)``)


def read_records(path: str) -> tuple[list[dict[str, Any]], bool]:
    """The file's records, and whether their values are text (CSV)."""
    if path == "-":
        return _json_lines(sys.stdin.read(), "standard input"), False
    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"{path}: no such file: give a JSON lines, CSV or parquet file, or - for standard input")
    suffix = file.suffix.lower()
    if suffix == ".csv":
        with file.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        return [{k: (v if v != "" else None) for k, v in row.items()} for row in rows], True
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return [{k: _plain(v) for k, v in row.items()} for row in pq.read_table(file).to_pylist()], False
    return _json_lines(file.read_text(encoding="utf-8"), path), False


def _json_lines(text: str, name: str) -> list[dict[str, Any]]:
    records = []
    for number, line in enumerate(io.StringIO(text), start=1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line, parse_float=Decimal))
        except ValueError as exc:
            raise ConfigError(f"{name}:{number}: not a JSON object ({exc}): give one record per line") from None
    return records


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat() + ("" if value.tzinfo else "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value
