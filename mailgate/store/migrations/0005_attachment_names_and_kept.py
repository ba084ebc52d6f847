"""0005 — what a sender called each attachment, and whether its bytes were kept.

* ``attachment.original_filename``: the file name as the sender wrote it (decoded, not
  cleaned); ``filename`` stays the cleaned name we offer for saving (issue 11).
* ``attachment.kept``: false when a limit kept the file's bytes out of the blob store
  (``[[mailbox]] max_attachment_size``); the row still says what was sent.
"""

from __future__ import annotations

from typing import Any


def apply(db: Any, dialect: str) -> None:
    true = "TRUE" if dialect == "postgresql" else "1"
    boolean = "BOOLEAN" if dialect == "postgresql" else "INTEGER"
    db.execute_sql(
        "ALTER TABLE attachment ADD COLUMN original_filename TEXT NOT NULL DEFAULT ''"
    )
    db.execute_sql(f"ALTER TABLE attachment ADD COLUMN kept {boolean} NOT NULL DEFAULT {true}")
