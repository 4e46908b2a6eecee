"""A stream model's online state for one entity, and the read that merges it (standard library only).

DESIGN.md section 11. The state of one (model, entity) has two writers:

- **sync** writes the warehouse's partials (``featuresql.serving.partials``) of the
  events below ``B``, the last complete model boundary of the warehouse's state:
  *coarse* slots (one per model-grain tile) wherever a window can only hold a tile
  whole, and *fine* slots (one per stream-grain slot) in the tiles where a window's
  edge can fall between this sync and a read up to ``B + horizon``. It replaces
  whatever the state held below ``B``: the warehouse is the truth there.
- **push** adds events at or after ``B``, each under its record id, so a record
  delivered twice is held once; an older event is left to the warehouse.

Because sync replaces and push adds, an event both pushed and loaded into the
warehouse counts once: pushed while at or after ``B``, from the warehouse once a
sync has moved ``B`` past it.

``B`` is passed to ``read`` as ``synced``; a state written under another ``B`` has
warehouse slots that do not fit it, and they are not read (the reader passes each
entity's own, ``featuresql.serving.stream_reads``).

A read at ``t`` answers for ``E = floor(t - delay, stream_grain)``, or for ``B + horizon``
when ``E`` is later (a late sync: the answer says which), each window ``[E - w, E)``
merged from the warehouse's slots below ``B`` and the pushed events in the window.

The state holds Python values (``int``, ``Decimal``, ``float``, ``Fraction``, ``str``,
``datetime``); the store's encoding of them is not part of this module::

    {"b": B (seconds),
     "slots": {"c<k>": partial of tile k, "f<k>": partial of stream slot k, ...},
     "pushed": {"<record id>": [time (epoch microseconds), {input column: value}], ...}}
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from featuresql.serving.partials import Partial, StreamFeature, add_event, empty, finish, merge_into, needs

MICROS = 1_000_000


class StoreAhead(Exception):
    """The state was synced past the time a read asks for: its fine slots no longer reach back there."""


@dataclass(frozen=True)
class StreamShape:
    """What the reader knows of a stream model's windows (from the manifest); times in seconds."""

    grain: int
    stream_grain: int
    delay: int
    horizon: int
    features: tuple[StreamFeature, ...]
    start: int | None = None  # the first boundary with values, a multiple of the stream grain

    @property
    def windows(self) -> list[int]:
        return sorted({feature.window for feature in self.features})

    @cached_property
    def needs(self) -> dict[str, frozenset[str]]:
        return needs(self.features)

    def end_of(self, time: int) -> int:
        """``E = floor(t - delay, stream_grain)`` in seconds, for ``time`` in epoch microseconds."""
        step = self.stream_grain * MICROS
        return (time - self.delay * MICROS) // step * self.stream_grain

    def fine_tiles(self, boundary: int) -> set[int]:
        """The model-grain tiles a window's edge can cut for reads ending in ``[B - grain, B + horizon]``."""
        grain = self.grain
        tiles = {boundary // grain - 1}  # a read before B ends inside the last tile
        for window in self.windows:
            first = (boundary - window - grain) // grain
            last = (boundary - window + self.horizon) // grain
            tiles.update(range(first, last + 1))
        return tiles


def warehouse_slots(
    events: Iterable[tuple[int, Mapping[str, Any]]], boundary: int, shape: StreamShape
) -> dict[str, Partial]:
    """The slots sync writes for ``events`` ((time in microseconds, inputs), times below ``boundary``)."""
    grain, step = shape.grain * MICROS, shape.stream_grain * MICROS
    oldest = boundary - max(shape.windows) - shape.grain  # nothing older reaches a read the state answers
    fine = shape.fine_tiles(boundary)
    wanted = shape.needs
    slots: dict[str, Partial] = {}
    for time, inputs in events:
        if not oldest * MICROS <= time < boundary * MICROS:
            continue
        tile = time // grain
        add_event(slots.setdefault(f"c{tile}", empty()), inputs, time, wanted)
        if tile in fine:
            add_event(slots.setdefault(f"f{time // step}", empty()), inputs, time, wanted)
    return slots


def read(state: Mapping[str, Any] | None, time: int, shape: StreamShape, synced: int) -> tuple[dict[str, Any], int]:
    """Every feature's value for a read at ``time`` (epoch microseconds), and the boundary it is as of.

    ``synced`` is ``B``, the boundary of the store's last sync of the model; ``state`` None is
    an entity the store holds nothing of.
    """
    as_of = min(shape.end_of(time), synced + shape.horizon)
    if as_of < synced - shape.grain:
        raise StoreAhead(f"the store was synced to {synced}, past this read's window end {as_of}")
    current = state is not None and int(state["b"]) == synced
    slots: Mapping[str, Partial] = state.get("slots", {}) if current and state is not None else {}
    pushed: Mapping[str, Sequence[Any]] = state.get("pushed", {}) if state is not None else {}
    if shape.start is not None and as_of < shape.start:
        return dict.fromkeys((f.name for f in shape.features), None), as_of
    merged = {window: _window(slots, pushed, as_of - window, as_of, synced, shape) for window in shape.windows}
    return {feature.name: finish(feature, merged[feature.window]) for feature in shape.features}, as_of


def _window(
    slots: Mapping[str, Partial],
    pushed: Mapping[str, Sequence[Any]],
    lo: int,
    hi: int,
    boundary: int,
    shape: StreamShape,
) -> Partial:
    """The merged partial of the events in ``[lo, hi)`` (seconds)."""
    total = empty()
    upto = min(hi, boundary)  # the warehouse's part: [lo, upto)
    grain, step = shape.grain, shape.stream_grain
    if lo < upto:
        first_whole = -(-lo // grain)  # the first tile starting at or after lo
        last_whole = upto // grain  # tiles before this one end by upto
        if first_whole >= last_whole:  # no whole tile: fine slots only
            _fine(slots, total, lo, upto, step)
        else:
            _fine(slots, total, lo, first_whole * grain, step)
            for tile in range(first_whole, last_whole):
                partial = slots.get(f"c{tile}")
                if partial is not None:
                    merge_into(total, partial)
            _fine(slots, total, last_whole * grain, upto, step)
    wanted = shape.needs
    for time, inputs in pushed.values():  # below B the warehouse's slots replace them
        if max(lo, boundary) * MICROS <= time < hi * MICROS:
            add_event(total, inputs, time, wanted)
    return total


def _fine(slots: Mapping[str, Partial], total: Partial, lo: int, hi: int, step: int) -> None:
    for slot in range(lo // step, hi // step):
        partial = slots.get(f"f{slot}")
        if partial is not None:
            merge_into(total, partial)
