"""Run fakesnow's HTTP server; started by ``ci/fakesnow_server.sh serve PORT [DB_PATH]``.

Runs inside fakesnow's own virtual environment (never featuresql's). It starts
the server the way ``fakesnow -s`` does (uvicorn serving ``fakesnow.server.app``
on 127.0.0.1), with two differences:

* ``fakesnow -s`` ignores ``-d/--db_path`` and keeps every database in memory.
  Here the instance that all sessions share is made on DB_PATH when one is
  given, so each database is the file ``DB_PATH/<NAME>.db``. (The per-session
  ``FAKESNOW_DB_PATH`` session parameter is no substitute: it makes a DuckDB
  instance per login, and a second login to the same database fails with
  "Unique file handle conflict".)
* Two result-encoding bugs of fakesnow 0.12.1 are patched (see below), both in
  how a DuckDB result is turned into the Arrow stream the connector reads.

SIGINT and SIGTERM stop it cleanly; DuckDB files are closed (checkpointed) then.
"""

from __future__ import annotations

import sys
from typing import Any

import fakesnow.arrow
import fakesnow.server
import pyarrow as pa
import uvicorn
from fakesnow.instance import FakeSnow

_timestamp_to_sf_struct = fakesnow.arrow.timestamp_to_sf_struct
_to_sf = fakesnow.server.to_sf


def timestamp_to_sf_struct(ts: pa.Array | pa.ChunkedArray) -> pa.Array:
    """Keep NULL timestamps NULL.

    fakesnow builds the (epoch, fraction[, timezone]) struct without a validity
    mask, so a NULL TIMESTAMP_* reaches the client as 1970-01-01 00:00:00.
    """
    if isinstance(ts, pa.ChunkedArray):
        ts = ts.combine_chunks()
    if not ts.null_count:
        return _timestamp_to_sf_struct(ts)
    struct = _timestamp_to_sf_struct(ts.fill_null(pa.scalar(0, type=ts.type)))
    return pa.StructArray.from_arrays(struct.flatten(), fields=list(struct.type), mask=ts.is_null())


def to_sf(table: pa.Table, rowtype: list[Any]) -> pa.Table:
    """Send UBIGINT results (eg HASH) as signed 64-bit, wrapping, as Snowflake's HASH is.

    fakesnow casts them to int64 with overflow checks, so half of all HASH values
    fail the request with HTTP 500.
    """
    for i, column in enumerate(table.columns):
        if pa.types.is_uint64(column.type):
            field = table.schema.field(i).with_type(pa.int64())
            table = table.set_column(i, field, column.cast(pa.int64(), safe=False))
    return _to_sf(table, rowtype)


fakesnow.arrow.timestamp_to_sf_struct = timestamp_to_sf_struct
fakesnow.server.to_sf = to_sf


def main(argv: list[str]) -> None:
    port = int(argv[0])
    if len(argv) > 1:
        fakesnow.server.shared_fs = FakeSnow(db_path=argv[1])
    try:
        uvicorn.run(fakesnow.server.app, host="127.0.0.1", port=port, log_level="info")
    finally:
        for conn in list(fakesnow.server.sessions.values()):
            conn.close()
        fakesnow.server.shared_fs.duck_conn.close()


if __name__ == "__main__":
    main(sys.argv[1:])
