"""The IMAP ledger: where each account stands and what became of the mail fetched from it.

The poller (a transport) never touches the database; the app calls these
functions for it, in the database thread. Imports the models and config.
"""

from __future__ import annotations

from typing import Any

from mailgate import store
from mailgate.config import Config
from mailgate.store import models as m

# Outcome actions → ledger columns.
_COLUMN = {
    "created": "ingested",
    "appended": "ingested",
    "reopened": "ingested",
    "bounce": "ingested",
    "list_alert": "ingested",
    "ignored": "ingested",
    "duplicate": "duplicate",
    "quarantined": "quarantined",
    "failed": "failed",
}


def _row(name: str) -> m.ImapState:
    row = m.ImapState.get_or_none(m.ImapState.name == name)
    if row is None:
        m.ImapState.insert(name=name).on_conflict_ignore().execute()
        row = m.ImapState.get(m.ImapState.name == name)
    return row


def position(name: str) -> tuple[int, int]:
    row = m.ImapState.get_or_none(m.ImapState.name == name)
    return (0, 0) if row is None else (int(row.uidvalidity), int(row.last_uid))


def record(name: str, uidvalidity: int, uid: int, counts: dict[str, int]) -> None:
    """Count outcomes by action ('failed' for mail not stored) and move the last UID to ``uid``.

    ``uid`` 0 means no progress: failed mail stays on the server and is fetched again.
    Without failures this counts as the account working (``mailgate check`` compares it
    with the time of the last problem); empty ``counts`` record just that.
    """
    with store.write_transaction():
        row = _row(name)
        now = m.utcnow()
        fields: dict[str, Any] = {"updated_at": now}
        if not counts.get("failed"):
            fields["last_success_at"] = now
        total = 0
        by_column: dict[str, int] = {}
        for action, count in counts.items():
            column = _COLUMN.get(action, "ingested")
            by_column[column] = by_column.get(column, 0) + count
            total += count
        for column, count in by_column.items():
            fields[column] = getattr(m.ImapState, column) + count
        fields["fetched"] = m.ImapState.fetched + total
        if uid and (uidvalidity != row.uidvalidity or uid > row.last_uid):
            fields["last_uid"] = uid
            fields["uidvalidity"] = uidvalidity
        m.ImapState.update(**fields).where(m.ImapState.id == row.id).execute()


def note(name: str, text: str) -> None:
    with store.write_transaction():
        row = _row(name)
        now = m.utcnow()
        m.ImapState.update(last_error=text[:2000], last_error_at=now, updated_at=now).where(
            m.ImapState.id == row.id
        ).execute()


def status(config: Config) -> list[dict[str, Any]]:
    rows = {r.name: r for r in m.ImapState.select()}
    result = []
    for account in config.imap:
        row = rows.get(account.name)
        result.append(
            {
                "name": account.name,
                "uidvalidity": row.uidvalidity if row else 0,
                "last_uid": row.last_uid if row else 0,
                "fetched": row.fetched if row else 0,
                "ingested": row.ingested if row else 0,
                "duplicate": row.duplicate if row else 0,
                "quarantined": row.quarantined if row else 0,
                "failed": row.failed if row else 0,
                "last_error": row.last_error if row else "",
                "last_error_at": row.last_error_at if row else None,
                "last_success_at": row.last_success_at if row else None,
                "failing": bool(
                    row
                    and row.last_error_at
                    and (row.last_success_at is None or row.last_error_at > row.last_success_at)
                ),
            }
        )
    return result
