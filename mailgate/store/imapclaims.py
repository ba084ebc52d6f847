"""IMAP claims: of several gateways polling one mailbox, exactly one takes each mail.

A process claims a UID before it stores the mail: a row in ``imap_claim`` and a
session advisory lock on it (PostgreSQL). Another process's claim of the same UID
fails while the lock is held, and also once the row says ``done`` (the mail was
marked processed on the server; a search made before that still lists it). A claim
whose process died is taken over at once: the database ended its session and with
it the lock. On SQLite (one gateway process) every claim succeeds and nothing is
written. The poller reaches this through the app's sink, in the database thread.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
from collections.abc import Sequence

from mailgate.store import sql
from mailgate.store.db import is_sqlite, utcnow, write_transaction

NAMESPACE = 0x4D47494D  # "MGIM": IMAP claims (two-key advisory locks)
# Done claims are kept this long: far longer than any search result stays in use.
KEEP_DONE = dt.timedelta(days=2)
OWNER = f"{socket.gethostname()}:{os.getpid()}"[:100]


def _key(account: str, uidvalidity: int, uid: int) -> int:
    digest = hashlib.sha256(f"{account}\0{uidvalidity}\0{uid}".encode()).digest()
    return int.from_bytes(digest[:4], "big", signed=True)


def claim(account: str, uidvalidity: int, uids: Sequence[int]) -> list[int]:
    """The UIDs of ``uids`` this process may store now (the others: someone else has them)."""
    if is_sqlite():
        return list(uids)
    with write_transaction():
        return _claim(account, uidvalidity, uids)


def _claim(account: str, uidvalidity: int, uids: Sequence[int]) -> list[int]:
    taken = []
    now = sql.ts(utcnow())
    for uid in uids:
        key = _key(account, uidvalidity, uid)
        if not sql.value("SELECT pg_try_advisory_lock(?, ?)", NAMESPACE, key):
            continue  # a live process is storing it right now
        # A row still "claimed" under a free lock belongs to a process that died or
        # gave it back: take it over. A "done" row stays done.
        mine = sql.one(
            "INSERT INTO imap_claim (account, uidvalidity, uid, state, owner, claimed_at)"
            " VALUES (?, ?, ?, 'claimed', ?, ?) ON CONFLICT (account, uidvalidity, uid)"
            " DO UPDATE SET owner = excluded.owner, claimed_at = excluded.claimed_at"
            " WHERE imap_claim.state = 'claimed' RETURNING uid",
            account,
            uidvalidity,
            uid,
            OWNER,
            now,
        )
        if mine is None:
            sql.run("SELECT pg_advisory_unlock(?, ?)", NAMESPACE, key)
            continue
        taken.append(uid)
    return taken


def settle(account: str, uidvalidity: int, claimed: Sequence[int], done: Sequence[int]) -> None:
    """``done`` were marked processed on the server; the rest of ``claimed`` go back."""
    if is_sqlite() or not claimed:
        return
    with write_transaction():
        _settle(account, uidvalidity, claimed, done)


def _settle(account: str, uidvalidity: int, claimed: Sequence[int], done: Sequence[int]) -> None:
    finished = set(done)
    back = [u for u in claimed if u not in finished]
    statements = (
        ("UPDATE imap_claim SET state = 'done' WHERE", sorted(finished)),
        ("DELETE FROM imap_claim WHERE state = 'claimed' AND", back),
    )
    for statement, uids in statements:
        if uids:
            sql.run(
                f"{statement} account = ? AND uidvalidity = ?"
                f" AND uid IN ({sql.placeholders(len(uids))})",
                account,
                uidvalidity,
                *uids,
            )
    for uid in claimed:
        sql.run("SELECT pg_advisory_unlock(?, ?)", NAMESPACE, _key(account, uidvalidity, uid))
    sql.run(
        "DELETE FROM imap_claim WHERE state = 'done' AND claimed_at < ?",
        sql.ts(utcnow() - KEEP_DONE),
    )
