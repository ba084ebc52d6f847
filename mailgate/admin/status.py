"""``mailgate status``: how the running gateway is doing, and what needs the admin's attention.

Everything comes from the database, so it works from any machine that shares it and
needs no running serve to answer: serve's heartbeat (``store/health.py``: written
every 10 s, removed by a clean stop), what came in the last hour, the outbox, the
quarantine, the suspended queue, the circuit breaker's overall window, and each IMAP
account's ledger.
``problems`` turns that into one line per thing to act on; the CLI exits 1 when
there is any, so a monitoring probe can run it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from mailgate.config import Config
from mailgate.notices.breaker import rates
from mailgate.store import breaker as breaker_counts
from mailgate.store import health, ledger
from mailgate.store import suspended as suspended_rows
from mailgate.store.db import utcnow

# A heartbeat older than this means serve is gone or hung (it beats every 10 s).
HEARTBEAT_STALE = dt.timedelta(seconds=30)
# An IMAP account that has not worked for this long needs a look.
IMAP_SILENCE = dt.timedelta(minutes=10)


@dataclass(frozen=True)
class Status:
    data: dict[str, Any]
    problems: list[str]


def serve_problem(beats: list[health.Heartbeat], now: dt.datetime) -> str:
    """'' when a serve process beat within ``HEARTBEAT_STALE``, else why not."""
    if not beats:
        return "serve: not running (no heartbeat: never started, or stopped)"
    newest = beats[0]
    age = now - newest.beat_at
    if age > HEARTBEAT_STALE:
        return (
            f"serve: not running (last heartbeat {int(age.total_seconds())} s ago,"
            f" pid {newest.pid} on {newest.host})"
        )
    return ""


def status(config: Config) -> Status:
    """The gateway's state as JSON-able data, and the problems (empty: all is well)."""
    now = utcnow()
    beats = health.heartbeats()
    backlog = health.backlog(now - dt.timedelta(hours=1))
    live = [b for b in beats if now - b.beat_at <= HEARTBEAT_STALE]
    breaker = _breaker(config, now)
    imap = [_imap(row, now) for row in ledger.status(config)]
    data: dict[str, Any] = {
        "serve": {
            "running": bool(live),
            "processes": [
                {
                    "host": b.host,
                    "pid": b.pid,
                    "since": _iso(b.started_at),
                    "last_heartbeat": _iso(b.beat_at),
                    "alive": b in live,
                    "worker": b.worker,
                    "listener": b.listener,
                }
                for b in beats
            ],
        },
        "received_last_hour": backlog["received_last_hour"],
        "tickets_last_hour": backlog["tickets_last_hour"],
        "last_received_at": _iso(backlog["last_received_at"]),
        "outbox": {
            **backlog["outbox"],
            "oldest_waiting_at": _iso(backlog["outbox"]["oldest_waiting_at"]),
        },
        "webhooks": {
            **backlog["webhooks"],
            "oldest_waiting_at": _iso(backlog["webhooks"]["oldest_waiting_at"]),
        },
        "quarantined": len(backlog["quarantined"]),
        # Spam and blocked senders kept out of the desk: shown, never a problem by itself.
        "suspended": suspended_rows.count(),
        "breaker": breaker,
        "imap": imap,
    }
    problems = [p for p in (serve_problem(beats, now),) if p]
    problems.extend(
        f"worker: {b.worker} in serve pid {b.pid} on {b.host}"
        for b in live
        if b.worker != "running"
    )
    if backlog["quarantined"]:
        ids = ", ".join(str(i) for i in backlog["quarantined"][:10])
        problems.append(
            f"quarantine: {len(backlog['quarantined'])} mail(s) not retried or deleted"
            f" (mailgate quarantine show ID; ids {ids})"
        )
    for kind, what in (("outbox", "mail(s)"), ("webhooks", "webhook delivery(ies)")):
        for state in ("failed", "uncertain"):
            if backlog[kind][state]:
                problems.append(
                    f"outbox: {backlog[kind][state]} {what} {state}"
                    f" (mailgate outbox list --status {state})"
                )
    if breaker["open"]:
        problems.append(
            f"breaker: open — {breaker['sent']} automatic mails within {breaker['window']},"
            f" the limit is {breaker['limit']}; notices are held back"
        )
    problems.extend(a["problem"] for a in imap if a["problem"])
    return Status(data, problems)


def _breaker(config: Config, now: dt.datetime) -> dict[str, Any]:
    """The circuit breaker's overall window: open when full (no automatic mail leaves)."""
    minute = breaker_counts.minute(now)
    state: dict[str, Any] = {"open": False, "sent": 0, "limit": None, "window": None}
    for count, seconds in rates(config.outbound.limits)[2]:
        sent = breaker_counts.overall(minute - max(seconds // 60, 1))
        window = f"{seconds // 60} min" if seconds >= 60 else f"{seconds} s"
        if state["limit"] is None or sent >= count:
            state = {"open": sent >= count, "sent": sent, "limit": count, "window": window}
        if sent >= count:
            break
    return state


def _imap(row: dict[str, Any], now: dt.datetime) -> dict[str, Any]:
    since = row["last_success_at"]
    problem = ""
    if since is None:
        problem = f"imap {row['name']}: no successful session yet"
    elif now - since > IMAP_SILENCE:
        minutes = int((now - since).total_seconds() // 60)
        problem = f"imap {row['name']}: no success for {minutes} min"
    if problem and row["last_error"]:
        problem += f" (last error: {row['last_error'][:200]})"
    return {
        "name": row["name"],
        "last_success_at": _iso(since),
        "last_error": row["last_error"],
        "last_error_at": _iso(row["last_error_at"]),
        "fetched": row["fetched"],
        "problem": problem,
    }


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"
