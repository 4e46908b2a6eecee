"""The string functions of on-demand programs, as DuckDB computes them (stdlib only).

Used by ``featuresql.serving.expressions``; every function takes the node's type first.
Strings are sequences of code points, as DuckDB's are: LENGTH counts code points, and
LOWER and UPPER map each code point on its own (DuckDB's simple case mapping, where
Python's ``str.lower``/``str.upper`` use the full one: ``ß`` upper-cases to ``ẞ``, not
``SS``; ``İ`` lower-cases to ``i``). ``tests/test_expressions.py`` checks both
against DuckDB for every code point.
"""

from __future__ import annotations

from collections.abc import Callable

from featuresql.serving.expression_errors import EvaluationError


def length(kind: str, value: str) -> int:
    return len(value)  # code points, as DuckDB's LENGTH


def pipe(kind: str, left: str, right: str) -> str:
    return left + right


# Unicode's space separators (category Zs), what DuckDB's one-argument TRIM removes (not tabs or newlines).
_SPACES = " \u00a0\u1680" + "".join(chr(c) for c in range(0x2000, 0x200B)) + "\u202f\u205f\u3000"


def trim(where: str) -> Callable[..., str]:
    """TRIM removes space separators only, as DuckDB's one-argument TRIM."""

    def trim(kind: str, value: str) -> str:
        return {"both": value.strip, "leading": value.lstrip, "trailing": value.rstrip}[where](_SPACES)

    return trim


def substring(kind: str, value: str, offset: int, length: int | None = None) -> str:
    """DuckDB's SUBSTRING: 1-based; 0 is just before the first character, a negative offset counts
    from the end, a negative length takes the characters before the offset."""
    if abs(offset) >= 2**32 or (length is not None and abs(length) >= 2**32):
        raise EvaluationError("SUBSTRING offset or length out of range")
    size = len(value)
    start = offset - 1 if offset > 0 else (size + offset if offset < 0 else -1)
    end = size if length is None else start + length
    if length is not None and length < 0:
        start, end = start + length, start
    start, end = min(max(start, 0), size), min(max(end, 0), size)
    return value[start:end] if start < end else ""


def like(kind: str, value: str, pattern: str) -> bool:
    """LIKE without ESCAPE: ``%`` any characters (newlines too), ``_`` one; case-sensitive.

    Linear in the text, whatever the pattern (a regex would backtrack on ``%a%a%a...``): the
    pieces between ``%`` are matched in order, each at its leftmost place.
    """
    pieces = pattern.split("%")
    if len(pieces) == 1:
        return len(value) == len(pattern) and _piece_at(value, 0, pattern)
    first, *middle, last = pieces
    if not _piece_at(value, 0, first) or len(first) + len(last) > len(value):
        return False
    if not _piece_at(value, len(value) - len(last), last):
        return False
    position, end = len(first), len(value) - len(last)
    for piece in middle:
        found = _find_piece(value, piece, position, end)
        if found < 0:
            return False
        position = found + len(piece)
    return True


def _piece_at(value: str, start: int, piece: str) -> bool:
    """Whether ``piece`` (with ``_`` for any character) matches ``value`` at ``start``."""
    if start < 0 or start + len(piece) > len(value):
        return False
    return all(p == "_" or p == value[start + i] for i, p in enumerate(piece))


def _find_piece(value: str, piece: str, start: int, end: int) -> int:
    """The leftmost place of ``piece`` in ``value[start:end]``, or -1."""
    if "_" not in piece:
        return value.find(piece, start, end)
    for position in range(start, end - len(piece) + 1):
        if _piece_at(value, position, piece):
            return position
    return -1


# Where a code point's full case mapping is several code points, DuckDB keeps one: the simple
# mapping (the title case when it is one code point), else these, else the code point itself.
_LOWER = {"\u0130": "i"}
_UPPER = {"\u00df": "\u1e9e"}


def _lower_one(character: str) -> str:
    lowered = character.lower()
    return lowered if len(lowered) == 1 else _LOWER.get(character, character)


def _upper_one(character: str) -> str:
    raised = character.upper()
    if len(raised) == 1:
        return raised
    titled = character.title()
    return titled if len(titled) == 1 else _UPPER.get(character, character)


def lower(kind: str, value: str) -> str:
    return value.lower() if value.isascii() else "".join(_lower_one(c) for c in value)


def upper(kind: str, value: str) -> str:
    return value.upper() if value.isascii() else "".join(_upper_one(c) for c in value)
