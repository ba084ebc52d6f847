"""Benchmark: ``jobs run`` costs what is due, not what is open.

    python bench/jobs.py [--due 1000] [--small 10000] [--large 100000] [--postgres URL]

Two fresh databases, each with 1,000 pending tickets whose reminder is due and
the rest open with due work in the future (an SLA warning next week): 10,000 and
100,000 open tickets. ``mailgate.jobs.run`` — the code of ``mailgate jobs run`` and
of serve's scheduled job — carries out the 1,000 reminders in each (events,
notices rendered and queued, the done marks); the figure is the ratio of the two
times. Proportional to the due work means a ratio near 1; proportional to the
open tickets would be 10.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mailgate import jobs, sla, store
from mailgate.config import from_dict
from mailgate.context import Context, open_context
from mailgate.store import directory, sql
from mailgate.store import sla as sla_rows
from mailgate.store.db import db as database

CHUNK = 500


def config_data(root: Path, url: str | None) -> dict[str, Any]:
    return {
        "gateway": {
            "name": "Bench Helpdesk",
            "domain": "helpdesk.example.org",
            "ticket_prefix": "EB",
            "secret_key_file": str(root / "secret.key"),
        },
        "storage": {"blob_dir": str(root / "blobs")},
        "database": {"url": url or f"sqlite:///{root / 'mailgate.db'}"},
        "outbound": {
            "transport": "maildir",
            "maildir": str(root / "sent"),
            "limits": {"per_recipient": ["10/10m"], "per_ticket": ["20/1h"], "overall": ["100000/1h"]},
        },
        "mailbox": [{"name": "support", "address": "support@example.org", "team": "level1"}],
        "team": [{"key": "level1", "name": "Level 1", "members": ["alice"]}],
        "agent": [{"key": "alice", "name": "Alice", "emails": ["alice@example.org"]}],
        "lifecycle": {"pending_reminder_after": "3d", "pending_close_after": "", "resolved_close_after": ""},
    }


def fresh(root: Path, url: str | None) -> Context:
    root.mkdir(parents=True, exist_ok=True)
    config = from_dict(config_data(root, url), root / "mailgate.toml")
    ctx = open_context(config)
    store.upgrade()
    with store.write_transaction():
        directory.sync(config)
        sla_rows.set_fingerprint(sla.settings(config).fingerprint)  # no recompute at start
    return ctx


def fill(ctx: Context, open_tickets: int, due: int, now: dt.datetime) -> None:
    """``open_tickets`` tickets: ``due`` pending with a reminder due, the rest not due yet."""
    team = directory.team_row("level1", ctx.config)
    assert team is not None
    created = sql.ts(now - dt.timedelta(days=4))
    for start in range(0, open_tickets, CHUNK):
        ids = range(start + 1, min(start + CHUNK, open_tickets) + 1)
        with store.write_transaction():
            sql.insert_many(
                "contact",
                ("id", "email", "name", "created_at", "undeliverable_reason"),
                [(i, f"customer{i}@customer.example", f"Customer {i}", created, "") for i in ids],
            )
            sql.insert_many(
                "ticket",
                ("id", "number", "subject", "status", "priority", "mailbox", "team_id",
                 "requester_id", "category", "tags", "foreign_tags", "created_at", "updated_at"),
                [(i, 100000 + i, f"Question {i}", "pending" if i <= due else "open", "normal",
                  "support", team.id, i, "", "[]", "[]", created, created) for i in ids],
            )  # fmt: skip
            sql.insert_many(
                "participant",
                ("ticket_id", "contact_id", "role"),
                [(i, i, "requester") for i in ids],
            )
            sql.insert_many(
                "timer",
                ("ticket_id", "kind", "key", "due_at", "outcome"),
                [
                    (i, "pending_reminder", "pending@bench", sql.ts(now - dt.timedelta(hours=1)), "")
                    if i <= due
                    else (i, "sla_warning", "resolution", sql.ts(now + dt.timedelta(days=7)), "")
                    for i in ids
                ],
            )
    if store.is_sqlite():  # the fill's WAL is not the jobs' work
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        database.execute_sql("ANALYZE")
    else:
        with store.write_transaction():
            for table in ("contact", "ticket"):
                sql.run(f"SELECT setval('{table}_id_seq', (SELECT MAX(id) FROM {table}))")
            sql.run("ANALYZE")


def schema_url(url: str, name: str) -> str:
    """A schema of its own in the given PostgreSQL database (dropped at the end)."""
    import psycopg2

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}")
    return f"{url}{'&' if '?' in url else '?'}options=-c%20search_path%3D{name}"


def drop_schema(url: str, name: str) -> None:
    import psycopg2

    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def measure(root: Path, url: str | None, open_tickets: int, due: int) -> float:
    name = f"bench_jobs_{open_tickets}"
    if url:
        url = schema_url(url, name)
    ctx = fresh(root, url)
    now = store.utcnow()
    started = time.perf_counter()
    fill(ctx, open_tickets, due, now)
    print(f"  filled {open_tickets:,} open tickets in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    report = jobs.run(ctx, at=now)
    seconds = time.perf_counter() - started
    assert len(report.done) == due, (len(report.done), report.failed)
    assert jobs.run(ctx, at=now).done == []
    print(f"  jobs run: {due:,} due of {open_tickets:,} open in {seconds:.2f} s ({due / seconds:.0f}/s)")
    store.close()
    if url:
        drop_schema(url.partition("?")[0], name)
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--due", type=int, default=1000)
    parser.add_argument("--small", type=int, default=10_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--postgres", metavar="URL", help="measure on this PostgreSQL database")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailgate-bench-jobs-"))
    try:
        backend = "PostgreSQL" if args.postgres else "SQLite"
        print(f"{backend}: {args.due:,} due out of {args.small:,} open")
        small = measure(work / "small", args.postgres, args.small, args.due)
        print(f"{backend}: {args.due:,} due out of {args.large:,} open")
        large = measure(work / "large", args.postgres, args.large, args.due)
        print(
            f"\njobs run, {args.due:,} due: {args.large:,} open {large:.2f} s ÷ "
            f"{args.small:,} open {small:.2f} s = {large / small:.2f} "
            f"(open tickets ×{args.large // args.small}; proportional to due work ≈ 1)"
        )
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
