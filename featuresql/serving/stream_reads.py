"""Reading a stream model's entity: its state item and pushed items, merged (standard library only).

A read at ``t`` needs the state item and the pushed items of the tiles from the
entity's ``B`` up to the read's window end. ``B`` is known only once the state and
the marker are read, so the first batch read guesses the tiles a sync on time
leaves (``horizon`` before ``E`` up to ``E``) and ``missing_tiles`` names any the
answer still needs (a late sync), for one more batch read.

The entity's ``B`` is its state's own, whatever the marker says: a state newer than the
marker is one a running sync has already rewritten, and one older (a replica behind
the marker, since a batch read is no snapshot, or a state a killed sync left) is still
exact as of its own ``B`` and answers as of ``min(E, its B + horizon)``, which the answer
says. An entity with no state (no warehouse events in reach at the last sync) has the
marker's ``B``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from featuresql.serving.manifest import OnlineStream
from featuresql.serving.stream_items import pushed_events, pushed_key, state_of
from featuresql.serving.stream_state import read

Item = dict[str, Any]


def guessed_tiles(stream: OnlineStream, time: int) -> range:
    """The tiles of pushed events a read at ``time`` (epoch microseconds) needs when the sync is on time."""
    shape = stream.shape
    end = shape.end_of(time)
    return range((end - shape.horizon) // shape.grain - 1, -(-end // shape.grain))


def entity_boundary(state: Mapping[str, Any] | None, synced: int) -> int:
    return synced if state is None else int(state["b"])


def needed_tiles(stream: OnlineStream, time: int, boundary: int) -> range:
    """The tiles of pushed events the answer merges: from ``B`` to the window end it answers as of."""
    shape = stream.shape
    as_of = min(shape.end_of(time), boundary + shape.horizon)
    return range(boundary // shape.grain, -(-as_of // shape.grain))


def missing_tiles(
    stream: OnlineStream, entity_key: str, schema: str, state_item: Item | None, time: int, synced: int
) -> list[str]:
    """The pushed items' keys the answer needs beyond the guessed ones."""
    boundary = entity_boundary(state_of(state_item), synced)
    guessed = guessed_tiles(stream, time)
    needed = needed_tiles(stream, time, boundary)
    return [pushed_key(entity_key, schema, tile) for tile in needed if tile not in guessed]


def entity_values(
    stream: OnlineStream,
    entity_key: str,
    schema: str,
    items: Mapping[str, Item],
    time: int,
    synced: int,
) -> tuple[dict[str, Any], int]:
    """Every feature's value for the entity and the window end (epoch seconds) it is as of.

    ``items``: the state item and pushed items read so far (every needed one included).
    """
    state = state_of(items.get(entity_key))
    boundary = entity_boundary(state, synced)
    pushed: dict[str, list[Any]] = {}
    for tile in needed_tiles(stream, time, boundary):
        pushed.update(pushed_events(items.get(pushed_key(entity_key, schema, tile))))
    merged = {"b": boundary, "slots": state["slots"] if state else {}, "pushed": pushed}
    return read(merged, time, stream.shape, boundary)
