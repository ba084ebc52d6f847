"""0002 — from here on the schema is this list of named migrations.

``schema_version`` becomes 2, which a mailgate from before named migrations (it
knew version 1 only) refuses with "newer than this mailgate; upgrade mailgate"
instead of running on a schema it does not know.
"""

from __future__ import annotations

from typing import Any


def apply(db: Any, dialect: str) -> None:
    db.execute_sql("INSERT INTO schema_version (version, applied_at) VALUES (2, CURRENT_TIMESTAMP)")
