"""The ingest workers of ``mailgate serve``: processes of their own that run ``ingest()``.

``process.py`` is what runs inside a worker (the per-mail deadline, following the
parent); ``pool.py`` is serve's side (calls handed over ahead of the answers, the
deadline watched, restarts). Imports the config, the context and errors; never the edge.
"""

from __future__ import annotations

from mailgate.worker.pool import Pool, Worker
from mailgate.worker.process import (
    ORPHAN_GRACE,
    Overdue,
    TookTooLong,
    _watch_parent,
    follow_parent,
    hard_stop_after,
)

__all__ = [
    "ORPHAN_GRACE",
    "Overdue",
    "Pool",
    "TookTooLong",
    "Worker",
    "_watch_parent",
    "follow_parent",
    "hard_stop_after",
]
