"""Mails in flight across processes: who is processing which Message-ID right now.

Several gateway processes share one PostgreSQL database. A process holds a
session-level advisory lock on the Message-ID of the mail it processes, taken
*before* the receipt is committed and let go after the main transaction: whoever
sees that receipt still ``received`` can wait on the lock until the mail's
ticket is committed (or its process died: PostgreSQL drops a dead session's
locks at once, so nothing is held past a crash). On SQLite nothing is held or
awaited (one gateway process; see the README's "Known limits").

The two-key form of the advisory lock (``NAMESPACE``, a 32-bit hash of the
Message-ID) lives apart from the single-key locks of migrations and jobs.
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Sequence

from peewee import OperationalError

from mailgate.store import sql
from mailgate.store.db import db, is_sqlite, pgcode

NAMESPACE = 0x4D474946  # "MGIF": mail in flight
_LOCK_NOT_AVAILABLE = "55P03"  # SQLSTATE of a lock_timeout that ran out


def _key(message_id: str) -> int:
    return int.from_bytes(hashlib.sha256(message_id.encode()).digest()[:4], "big", signed=True)


# The Message-IDs this thread's session holds (peewee keeps a connection per thread).
_local = threading.local()


def _holding() -> set[str]:
    held: set[str] | None = getattr(_local, "held", None)
    if held is None:
        held = _local.held = set()
    return held


def hold(message_id: str) -> bool:
    """Mark ``message_id`` as being processed by this session; False if another holds it
    (the same mail reaching two processes at once) or on SQLite."""
    if is_sqlite():
        return False
    held = bool(sql.value("SELECT pg_try_advisory_lock(?, ?)", NAMESPACE, _key(message_id)))
    if held:
        _holding().add(message_id)
    return held


def hold_expression(message_id: str) -> tuple[str, int]:
    """The SQL expression that takes ``message_id`` for this session (true when it did), for
    a statement that takes it on its way — the receipt's INSERT … RETURNING, so that it is
    held before the receipt is committed, without a round trip of its own — and its
    parameter (the key: the statement's text stays the same, so it is prepared once per
    connection). Report the result with ``took``. PostgreSQL only."""
    return f"pg_try_advisory_lock({NAMESPACE}, ?)", _key(message_id)


def took(message_id: str) -> None:
    """This session took ``message_id`` in a statement of its own (``hold_expression``)."""
    _holding().add(message_id)


def holds(message_id: str) -> bool:
    """Whether this session still holds ``message_id`` (``let_go_at_commit`` may have
    let go already)."""
    return message_id in _holding()


def let_go(message_id: str) -> None:
    _holding().discard(message_id)
    sql.run("SELECT pg_advisory_unlock(?, ?)", NAMESPACE, _key(message_id))


def let_go_at_commit(message_id: str) -> None:
    """Let go of ``message_id`` right after the open transaction commits, in the same
    round trip as its COMMIT (whoever waits for it then sees what it committed). If the
    transaction rolls back, this session still holds it: ``let_go`` it."""
    if is_sqlite() or message_id not in _holding():
        return
    db.obj.send_after_commit(
        f"SELECT pg_advisory_unlock({NAMESPACE}, {_key(message_id)})",
        lambda: _holding().discard(message_id),
    )


# Those of some Message-IDs whose receipt came before a receipt and is not finished, as an
# expression (an array) of a statement on that receipt (``receipts.status_locked``); its
# parameters: the receipt's id, the Message-IDs as an array. Only earlier receipts: a
# process then waits only for mails that arrived before its own, so no two processes can
# ever wait for each other. PostgreSQL only.
UNFINISHED_BEFORE = (
    "ARRAY(SELECT message_id FROM receipt AS parent WHERE parent.status = 'received'"
    " AND parent.id < ? AND parent.message_id = ANY(?))"
)


def wait(message_ids: Sequence[str], seconds: float) -> bool:
    """Wait until no session holds any of ``message_ids``; False when ``seconds`` ran out
    for one of them. Call outside any transaction.

    One round trip: the statements of one query string are one implicit transaction,
    so ``SET LOCAL`` holds for the shared locks beside it, which end with it."""
    if is_sqlite() or not message_ids:
        return True
    locks = ", ".join(
        f"pg_advisory_xact_lock_shared({NAMESPACE}, {key})"
        for key in sorted({_key(message_id) for message_id in message_ids})
    )
    try:
        sql.run(f"SET LOCAL lock_timeout = '{max(1, int(seconds * 1000))}ms'; SELECT {locks}")
    except OperationalError as exc:
        if pgcode(exc) != _LOCK_NOT_AVAILABLE:
            raise
        return False
    return True
