"""The gateway's health as the database knows it: serve's heartbeat and the backlogs.

``mailgate serve`` writes its heartbeat (``beat``) every 10 s and removes it on a
clean stop (``clear``); ``mailgate check`` and ``mailgate status`` read it, with
the counts of what waits (``backlog``), to tell an admin — or a monitoring probe —
whether the gateway is doing its work. Only reads, besides the heartbeat.
Imports peewee, the models and ``store.sql``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import peewee as pw

from mailgate.store import sql
from mailgate.store.db import utcnow, write_transaction
from mailgate.store.models import BaseModel


class ServeHeartbeat(BaseModel):
    """One row per running ``mailgate serve`` (migration 0008)."""

    host = pw.CharField(max_length=255)
    pid = pw.IntegerField()
    started_at = pw.DateTimeField()
    beat_at = pw.DateTimeField()
    worker = pw.CharField(max_length=40)
    listener = pw.CharField(max_length=400)

    class Meta:
        table_name = "serve_heartbeat"
        indexes = ((("host", "pid"), True),)


@dataclass(frozen=True)
class Heartbeat:
    host: str
    pid: int
    started_at: dt.datetime
    beat_at: dt.datetime
    worker: str
    listener: str


# A row of a serve that was killed (no clean stop) is shown as not alive for a day, then
# forgotten: restarts after crashes must not pile up rows.
FORGET_AFTER = dt.timedelta(days=1)


def beat(host: str, pid: int, started_at: dt.datetime, worker: str, listener: str) -> None:
    """Record that this serve process is alive now (insert or refresh its row)."""
    now = utcnow()
    with write_transaction():
        sql.run("DELETE FROM serve_heartbeat WHERE beat_at < ?", sql.ts(now - FORGET_AFTER))
        updated = sql.run(
            "UPDATE serve_heartbeat SET beat_at = ?, worker = ?, listener = ?, started_at = ?"
            " WHERE host = ? AND pid = ?",
            sql.ts(now),
            worker,
            listener[:400],
            sql.ts(started_at),
            host,
            pid,
        ).rowcount
        if not updated:
            sql.run(
                "INSERT INTO serve_heartbeat (host, pid, started_at, beat_at, worker, listener)"
                " VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (host, pid) DO NOTHING",
                host,
                pid,
                sql.ts(started_at),
                sql.ts(now),
                worker,
                listener[:400],
            )


def clear(host: str, pid: int) -> None:
    """A clean stop: this process no longer claims to run."""
    with write_transaction():
        sql.run("DELETE FROM serve_heartbeat WHERE host = ? AND pid = ?", host, pid)


def heartbeats() -> list[Heartbeat]:
    """Every serve process that recorded a heartbeat, newest beat first."""
    found = sql.rows(
        "SELECT host, pid, started_at, beat_at, worker, listener FROM serve_heartbeat"
        " ORDER BY beat_at DESC"
    )
    return [
        Heartbeat(
            host=str(r[0]),
            pid=int(r[1]),
            started_at=sql.read_ts(r[2]) or utcnow(),
            beat_at=sql.read_ts(r[3]) or utcnow(),
            worker=str(r[4]),
            listener=str(r[5]),
        )
        for r in found
    ]


def backlog(since: dt.datetime) -> dict[str, Any]:
    """What waits and what came: counts an admin watches (one query each, all indexed or small)."""
    # Mail and webhook deliveries share the outbox table; an admin reads them apart.
    waiting: dict[tuple[bool, str], int] = {
        (hook == "webhook", str(status)): int(count)
        for hook, status, count in sql.rows(
            "SELECT CASE WHEN notice = 'webhook' THEN 'webhook' ELSE 'mail' END, status,"
            " COUNT(*) FROM outbox_item WHERE status <> 'sent' GROUP BY 1, 2"
        )
    }
    oldest = {
        hook == "webhook": sql.read_ts(first)
        for hook, first in sql.rows(
            "SELECT CASE WHEN notice = 'webhook' THEN 'webhook' ELSE 'mail' END,"
            " MIN(created_at) FROM outbox_item"
            " WHERE status IN ('queued', 'claimed', 'sending') GROUP BY 1"
        )
    }

    def box(hook: bool) -> dict[str, Any]:
        count = {state: n for (is_hook, state), n in waiting.items() if is_hook == hook}
        return {
            "queued": count.get("queued", 0) + count.get("claimed", 0) + count.get("sending", 0),
            "failed": count.get("failed", 0),
            "uncertain": count.get("uncertain", 0),
            "oldest_waiting_at": oldest.get(hook),
        }

    quarantined = sql.rows(
        "SELECT id, received_at FROM receipt WHERE status = 'quarantined' ORDER BY id"
    )
    return {
        "received_last_hour": int(
            sql.value("SELECT COUNT(*) FROM receipt WHERE received_at > ?", sql.ts(since)) or 0
        ),
        "tickets_last_hour": int(
            sql.value("SELECT COUNT(*) FROM ticket WHERE created_at > ?", sql.ts(since)) or 0
        ),
        "last_received_at": sql.read_ts(sql.value("SELECT MAX(received_at) FROM receipt")),
        "outbox": box(hook=False),
        "webhooks": box(hook=True),
        "quarantined": [int(r[0]) for r in quarantined],
    }
