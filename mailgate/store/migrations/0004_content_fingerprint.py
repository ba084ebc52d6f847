"""0004 — the content fingerprint of each received mail (issue 9).

``receipt.content_fingerprint``: the sha256 of what a mail says — From, Subject, Date
and the decoded body text with line endings and trailing spaces normalised, and the
decoded attachments — so the same mail re-encoded in transit (quoted-printable ↔ 8bit,
CRLF ↔ LF, trace headers added) is recognised as a duplicate. '' for mail without a
Date (nothing tells two such mails apart) and for rows from before.
"""

from __future__ import annotations

from typing import Any


def apply(db: Any, dialect: str) -> None:
    db.execute_sql(
        "ALTER TABLE receipt ADD COLUMN content_fingerprint VARCHAR(64) NOT NULL DEFAULT ''"
    )
    db.execute_sql("CREATE INDEX receipt_content_fingerprint ON receipt (content_fingerprint)")
