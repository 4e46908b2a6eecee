"""Named points in a command where a test can stop the process (crash-safety and fault tests).

With ``FEATURESQL_PAUSE_AT=<name>`` (or ``<name>:<n>`` for its n-th occurrence)
in the environment, the process prints ``featuresql paused at <name>`` to stderr
and waits when it reaches that point, so a test can SIGKILL it exactly there, or
change the world around it (stop the warehouse, restart the online store). It
waits forever, or with ``FEATURESQL_RESUME_FILE=<path>`` until that file exists,
and then goes on. Without the variables, ``reach`` is one dictionary lookup.

``featuresql run``: ``before_batch``, ``after_delete``, ``before_commit`` and
``after_commit`` around each batch's transaction (``featuresql.run.execution``).
``featuresql sync``, per model: ``sync_staged`` (its changed rows are in a
temporary table), ``sync_written`` (after each batch the store acknowledged),
``sync_before_mirror`` (everything written, the mirror not yet updated) and
``sync_mirrored`` (the mirror committed). ``featuresql extract``:
``extract_staged`` (the spine is in the warehouse) and ``extract_before_rename``
(the output is complete in its temporary file, not yet renamed onto ``--out``).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

POINTS = (
    "before_batch",
    "after_delete",
    "before_commit",
    "after_commit",
    "sync_staged",
    "sync_written",
    "sync_before_mirror",
    "sync_mirrored",
    "extract_staged",
    "extract_before_rename",
)
POLL_SECONDS = 0.05

_counts: dict[str, int] = {}
_lock = threading.Lock()


def reach(name: str) -> None:
    """Pause here if the environment asks for it (see the module docstring)."""
    wanted = os.environ.get("FEATURESQL_PAUSE_AT")
    if not wanted:
        return
    point, _, nth = wanted.partition(":")
    if point != name:
        return
    with _lock:
        _counts[name] = _counts.get(name, 0) + 1
        count = _counts[name]
    if count != int(nth or 1):
        return
    print(f"featuresql paused at {name}", file=sys.stderr, flush=True)
    resume = os.environ.get("FEATURESQL_RESUME_FILE")
    while resume is None or not Path(resume).exists():
        time.sleep(POLL_SECONDS if resume else 60)
