"""Named points in a run where a test can stop the process (crash-safety tests).

With ``FEATURESQL_PAUSE_AT=<name>`` (or ``<name>:<n>`` for its n-th occurrence)
in the environment, the process prints ``featuresql paused at <name>`` to stderr
and sleeps when it reaches that point, so a test can SIGKILL it exactly there.
Without the variable, ``reach`` is one dictionary lookup.
"""

from __future__ import annotations

import os
import sys
import threading
import time

POINTS = ("before_batch", "after_delete", "before_commit", "after_commit", "sync_written", "sync_before_mirror")

_counts: dict[str, int] = {}
_lock = threading.Lock()


def reach(name: str) -> None:
    """Pause forever here if the environment asks for it."""
    wanted = os.environ.get("FEATURESQL_PAUSE_AT")
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        count = _counts[name]
    if count == int(nth or 1):
        print(f"featuresql paused at {name}", file=sys.stderr, flush=True)
        while True:
            time.sleep(60)
