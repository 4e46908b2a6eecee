"""Time in featuresql is UTC: a datetime without a zone is a UTC time, as event times are stored.

One reading of that rule for every module that turns warehouse, YAML or command-line
times into instants.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def utc(moment: datetime) -> datetime:
    """``moment`` as an aware UTC datetime; a naive one is read as UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def epoch_micros(moment: datetime) -> int:
    """Whole microseconds since the Unix epoch (a naive ``moment`` is UTC), exactly: no float on the way."""
    return (utc(moment) - EPOCH) // MICROSECOND
