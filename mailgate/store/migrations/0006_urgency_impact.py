"""0006 — a ticket's urgency and impact (issue 13), beside its category.

``#urgency`` and ``#impact`` (low, medium, high) are ticket state like the category:
written by the lifecycle only, which derives the priority from them through
``[priority_matrix]``. Empty: not set.
"""

from __future__ import annotations

from typing import Any


def apply(db: Any, dialect: str) -> None:
    db.execute_sql("ALTER TABLE ticket ADD COLUMN urgency VARCHAR(10) NOT NULL DEFAULT ''")
    db.execute_sql("ALTER TABLE ticket ADD COLUMN impact VARCHAR(10) NOT NULL DEFAULT ''")
