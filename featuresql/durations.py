"""Durations written by users ('1d', '7 days', '15m', '1 hour') as whole seconds."""

from __future__ import annotations

import re

_UNITS = {
    "s": 1,
    "sec": 1,
    "second": 1,
    "seconds": 1,
    "m": 60,
    "min": 60,
    "minute": 60,
    "minutes": 60,
    "h": 3600,
    "hr": 3600,
    "hour": 3600,
    "hours": 3600,
    "d": 86400,
    "day": 86400,
    "days": 86400,
    "w": 604800,
    "week": 604800,
    "weeks": 604800,
}
_PATTERN = re.compile(r"^\s*(\d+)\s*([a-z]+)\s*$")


def parse_duration(text: str | int) -> int:
    """Parse a duration such as '7d', '1 day', '90m' or '2 hours' into seconds.

    A bare integer is taken as seconds. Raises ValueError with a hint on bad input.
    """
    if isinstance(text, bool):
        raise ValueError(f"invalid duration {text!r}: write e.g. '1d', '6h' or '15m'")
    if isinstance(text, int):
        if text < 0:
            raise ValueError(f"invalid duration {text!r}: must not be negative")
        return text
    match = _PATTERN.match(str(text).lower())
    if not match or match.group(2) not in _UNITS:
        raise ValueError(f"invalid duration {text!r}: write e.g. '1d', '6h', '15m' or '1 day'")
    return int(match.group(1)) * _UNITS[match.group(2)]


def format_duration(seconds: int) -> str:
    """The shortest exact spelling of a duration: 86400 -> '1d', 5400 -> '90m'."""
    for suffix, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds and seconds % size == 0:
            return f"{seconds // size}{suffix}"
    return f"{seconds}s"
