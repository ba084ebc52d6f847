"""Benchmark: `tickets list --text` and a 90-day `report` on a database of 1,000,000 messages.

    python bench/search.py [--messages 1000000] [--postgres URL] [--queries 200]

Generates a year of tickets (5 messages each: the customer's mail, the answer, a
reply, a note, the resolution; words drawn from a vocabulary with a long tail, in
English, German and French, a few in Japanese) and their events, straight into a
fresh database — through the migrated schema, so the search index is kept by its
triggers as in production. Then measures ``mailgate.search.find`` (the code of
``tickets list --text``: one page of 50 and the count of all matches) for rare and
common words, prefixes and phrases, and ``mailgate.reports.build`` for the last 90
days. With ``--postgres`` both backends are measured in the same run and the
ratios SQLite/PostgreSQL printed. Targets (issue 14): search p95 ≤ 200 ms and
the 90-day report ≤ 5 s on SQLite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.jobs import drop_schema, schema_url
from mailgate import reports, search, store
from mailgate.config import from_dict
from mailgate.context import Context, open_context
from mailgate.store import directory, sql
from mailgate.store.db import db as database
from mailgate.store.messages import OUTBOUND_COLUMNS

PER_TICKET = 5
CHUNK = 200  # tickets per transaction (1,000 messages)
DAYS = 365
COMMON = ["the", "card", "terminal", "is", "not", "working", "please", "help", "with", "the", "payment", "since", "this", "morning", "our", "customers", "cannot", "pay", "and", "the", "screen", "shows", "an", "error", "again", "after", "restart"]  # fmt: skip
RARE = [f"{a}{b}" for a in ("kar", "ter", "min", "zah", "pay", "log", "sig", "bel", "fac", "rou")
        for b in ("ten", "al", "ung", "ment", "in", "ture", "eur", "ger", "beleg", "nal")]  # fmt: skip
NATIVE = ["Kartenterminal", "Störung", "Zahlung", "Beleg", "Kasse", "funktioniert", "nicht", "mehr", "paiement", "facture", "terminal", "ne", "fonctionne", "plus", "réseau", "caisse"]  # fmt: skip
JAPANESE = ("カード端末が動きません", "東京の店舗です", "支払いができません")


def config_data(root: Path, url: str | None) -> dict[str, Any]:
    return {
        "gateway": {"name": "Bench Helpdesk", "domain": "helpdesk.example.org",
                    "ticket_prefix": "EB", "secret_key_file": str(root / "secret.key")},
        "storage": {"blob_dir": str(root / "blobs")},
        "database": {"url": url or f"sqlite:///{root / 'mailgate.db'}"},
        "outbound": {"transport": "maildir", "maildir": str(root / "sent")},
        "mailbox": [{"name": "support", "address": "support@example.org", "team": "level1"}],
        "team": [{"key": "level1", "name": "Level 1", "members": ["alice", "bob"]}],
        "agent": [{"key": "alice", "name": "Alice", "emails": ["alice@example.org"]},
                  {"key": "bob", "name": "Bob", "emails": ["bob@example.org"]}],
    }  # fmt: skip


def words(rng: random.Random, count: int) -> str:
    """Mostly common words, a long tail of rarer ones, some German/French, rarely Japanese."""
    picked = []
    for _ in range(count):
        roll = rng.random()
        if roll < 0.70:
            picked.append(rng.choice(COMMON))
        elif roll < 0.85:
            picked.append(f"w{int(rng.paretovariate(1.0) * 10) % 50000}")
        elif roll < 0.95:
            picked.append(rng.choice(RARE))
        elif roll < 0.999:
            picked.append(rng.choice(NATIVE))
        else:
            picked.append(rng.choice(JAPANESE))
    return " ".join(picked)


def fill(ctx: Context, tickets: int, now: dt.datetime) -> None:
    rng = random.Random(14)
    team = directory.team_row("level1", ctx.config)
    alice, bob = (directory.agent_row(k, ctx.config) for k in ("alice", "bob"))
    assert team is not None and alice is not None and bob is not None
    first = now - dt.timedelta(days=DAYS)
    for start in range(0, tickets, CHUNK):
        ids = range(start + 1, min(start + CHUNK, tickets) + 1)
        contacts, rows, participants, messages, events = [], [], [], [], []
        for i in ids:
            created = first + dt.timedelta(seconds=DAYS * 86400 * i / tickets)
            times = [created + dt.timedelta(minutes=m) for m in (0, 45, 300, 320, 600)]
            done = times[-1] < now - dt.timedelta(days=2)
            agent = alice if i % 2 else bob
            subject = words(rng, 5)
            contacts.append((i, f"customer{i}@c{i % 500}.example", "", sql.ts(created), ""))
            rows.append((i, 100000 + i, subject, "resolved" if done else "open", "normal",
                         "support", team.id, agent.id, i, "", "[]", "[]", sql.ts(created),
                         sql.ts(times[-1]), sql.ts(times[1]), sql.ts(times[-1]) if done else None))  # fmt: skip
            participants.append((i, i, "requester"))
            for n, (kind, direction) in enumerate(
                (("customer", "in"), ("agent", "out"), ("customer", "in"), ("note", "in"),
                 ("agent", "out"))
            ):  # fmt: skip
                text = words(rng, rng.randint(15, 45))
                messages.append((i, direction, kind, f"<{i}.{n}@bench.example>",
                                 f"customer{i}@c{i % 500}.example", "", "[]", "[]",
                                 f"Re: {subject}" if n else subject, sql.ts(times[n]), text, text,
                                 "", "", "[]", True, sql.ts(times[n])))  # fmt: skip
            actor = f"agent:{agent.key}"
            events += [
                (i, sql.ts(times[0]), "customer:x", "created", "", subject[:50], None, ""),
                (i, sql.ts(times[0]), "customer:x", "message", "", "customer", None, ""),
                (i, sql.ts(times[0]), "system:route:default", "assignee", "", agent.key, None, ""),
                (i, sql.ts(times[1]), actor, "first_response", "", "", None, ""),
                (i, sql.ts(times[1]), actor, "status", "new", "open", None, ""),
                (i, sql.ts(times[1]), actor, "agent_reply", "", "", None, ""),
                (i, sql.ts(times[2]), "customer:x", "message", "", "customer", None, ""),
                (i, sql.ts(times[3]), actor, "note", "", "", None, ""),
                (i, sql.ts(times[4]), actor, "agent_reply", "", "", None, ""),
            ]
            if done:
                events.append((i, sql.ts(times[4]), actor, "status", "open", "resolved", None, ""))
        with store.write_transaction():
            sql.insert_many("contact", ("id", "email", "name", "created_at",
                                        "undeliverable_reason"), contacts)  # fmt: skip
            sql.insert_many(
                "ticket",
                ("id", "number", "subject", "status", "priority", "mailbox", "team_id",
                 "assignee_id", "requester_id", "category", "tags", "foreign_tags", "created_at",
                 "updated_at", "first_response_at", "resolved_at"),
                rows,
            )  # fmt: skip
            sql.insert_many("participant", ("ticket_id", "contact_id", "role"), participants)
            for k in range(0, len(messages), 1000):
                sql.insert_many("message", OUTBOUND_COLUMNS, messages[k : k + 1000])
            sql.insert_many("event", ("ticket_id", "at", "actor", "kind", "old", "new",
                                      "message_id", "detail"), events)  # fmt: skip
    if store.is_sqlite():
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        database.execute_sql("ANALYZE")
    else:
        with store.write_transaction():
            for table in ("contact", "ticket"):
                sql.run(f"SELECT setval('{table}_id_seq', (SELECT MAX(id) FROM {table}))")
        database.execute_sql("ANALYZE")


QUERIES = (
    [*RARE[:30], *(f"{r[:4]}*" for r in RARE[:10]), "card", "terminal", "payment", "error",
     '"card terminal"', '"cannot pay"', "Störung", "paiement", "termin*", "端末", "w17", "w4242",
     "kartenterminal zahlung", '"screen shows"', "restart*", "100123", "<777.0@bench.example>"]
)  # fmt: skip


def prepare(root: Path, url: str | None, messages: int) -> tuple[Any, float]:
    """A fresh database with ``messages`` messages: its config and the seconds the fill took."""
    root.mkdir(parents=True, exist_ok=True)
    config = from_dict(config_data(root, url), root / "mailgate.toml")
    ctx = open_context(config)
    store.upgrade()
    with store.write_transaction():
        directory.sync(config)
    started = time.perf_counter()
    fill(ctx, messages // PER_TICKET, store.utcnow())
    filled = time.perf_counter() - started
    print(f"  filled {messages:,} messages ({messages // PER_TICKET:,} tickets) in {filled:.0f} s")
    store.close()
    return config, filled


def searches(config: Any, timings: dict[str, list[float]]) -> None:
    """Every query once (``tickets list --text``: a page of 50 and the count)."""
    open_context(config)
    now = store.utcnow()
    for query in QUERIES:
        started = time.perf_counter()
        found = search.find(config, search.Options(text=query), now=now)
        timings.setdefault(query, []).append(time.perf_counter() - started)
        assert found.total >= 0
    store.close()


def report_seconds(config: Any) -> float:
    open_context(config)
    now = store.utcnow()
    start = now - dt.timedelta(days=90)
    within = reports.Period(start, now, "UTC", start.date(), now.date())
    started = time.perf_counter()
    got = reports.build(config, within, "week", now)
    seconds = time.perf_counter() - started
    assert got["volume"]["opened"] > 0
    store.close()
    return seconds


def figures(timings: dict[str, list[float]], report: list[float]) -> dict[str, float]:
    every = sorted(t for ts in timings.values() for t in ts)
    slowest = max(timings, key=lambda q: statistics.median(timings[q]))
    found = {"median": statistics.median(every), "p95": every[int(0.95 * (len(every) - 1))],
             "report": statistics.median(report)}  # fmt: skip
    print(f"  search: {len(every)} queries, median {found['median'] * 1000:.0f} ms,"
          f" p95 {found['p95'] * 1000:.0f} ms, slowest {slowest!r}"
          f" {statistics.median(timings[slowest]) * 1000:.0f} ms;"
          f" 90-day report by week {found['report']:.2f} s")  # fmt: skip
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every query and a report")
    parser.add_argument("--postgres", metavar="URL", help="measure PostgreSQL too (a schema of"
                        " its own in this database)")  # fmt: skip
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="mailgate-bench-search-"))
    name = "bench_search"
    try:
        print(f"SQLite, {args.messages:,} messages")
        backends = {"SQLite": prepare(work / "sqlite", None, args.messages)}
        if args.postgres:
            print(f"PostgreSQL, {args.messages:,} messages")
            url = schema_url(args.postgres, name)
            backends["PostgreSQL"] = prepare(work / "pg", url, args.messages)
        # Rounds alternate between the backends, so load from elsewhere weighs on both alike.
        timings: dict[str, dict[str, list[float]]] = {b: {} for b in backends}
        report: dict[str, list[float]] = {b: [] for b in backends}
        for _ in range(args.rounds):
            for backend, (config, _filled) in backends.items():
                searches(config, timings[backend])
                report[backend].append(report_seconds(config))
        found = {}
        for backend in backends:
            print(backend)
            found[backend] = figures(timings[backend], report[backend])
            found[backend]["fill"] = backends[backend][1]
        if args.postgres:
            lite, pg = found["SQLite"], found["PostgreSQL"]
            print("\nSQLite / PostgreSQL (below 1: SQLite faster):")
            for key, label in (("median", "search median"), ("p95", "search p95"),
                               ("report", "90-day report"), ("fill", "filling")):  # fmt: skip
                print(f"  {label:<14} {lite[key]:.3f} s / {pg[key]:.3f} s = {lite[key] / pg[key]:.2f}")
        lite = found["SQLite"]
        print(f"\ntargets on SQLite: search p95 {lite['p95'] * 1000:.0f} ms (≤ 200),"
              f" 90-day report {lite['report']:.2f} s (≤ 5); load average now"
              f" {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")  # fmt: skip
    finally:
        if args.postgres:
            drop_schema(args.postgres, name)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
