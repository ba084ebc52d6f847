"""Benchmark: where a PostgreSQL mail's time goes — round trips, statements, CPU on both ends.

    python bench/pg_trips.py [--postgres URL] [--count 200] [--show 25]

The bench corpus's realistic mails through ``mailgate.intake.ingest`` into a fresh
PostgreSQL schema, one process, every call the driver is given counted by a wrapper
around its cursor. Deterministic whatever the load: round trips, statements (a round
trip may carry several: BEGIN, deferred writes, COMMIT) and COMMITs a mail; and, nearly
so, the gateway's own CPU (``time.process_time``) and the server backend's CPU (its
``/proc/<pid>/schedstat`` read around every call, so the server must run on this
machine), with the server's CPU by statement (``--show``). Wall time is printed too,
but on a shared machine it says little. Runs against whatever mailgate ``PYTHONPATH``
names (to compare trees: ``PYTHONPATH=/other/tree python bench/pg_trips.py``). The
schema is named ``bench_pgt_*`` and dropped after.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

# Appended, not prepended: PYTHONPATH decides which mailgate is measured.
sys.path.append(str(Path(__file__).resolve().parents[1]))

import psycopg2

from bench.corpus import corpus
from bench.ingest import fresh
from mailgate import store
from mailgate.intake import ingest
from mailgate.store import db as database

_STATEMENT = re.compile(
    r";\s+(?=(?:BEGIN|COMMIT|INSERT|UPDATE|SELECT|SET|DELETE|WITH|SAVEPOINT|RELEASE"
    r"|ROLLBACK|PREPARE|EXECUTE)\b)"
)


def shape(statement: str) -> str:
    """The statement without its values (to count alike statements together)."""
    text = re.sub(r"'(?:[^']|'')*'", "?", statement)
    text = re.sub(r"\b\d+\b", "?", text)
    return re.sub(r"(\(\?(, \?)*\)(, )?)+", "(..)", text)[:100]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("MAILGATE_TEST_DATABASE_URL"))
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--show", type=int, default=0, help="the N statements of most server CPU")
    args = parser.parse_args()
    if not args.postgres:
        parser.error("--postgres URL (or MAILGATE_TEST_DATABASE_URL) is needed")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    mails = corpus(args.count)
    schema = f"bench_pgt_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(args.postgres)
    admin.autocommit = True
    admin.cursor().execute(f"CREATE SCHEMA {schema}")
    work = Path(tempfile.mkdtemp(prefix="mailgate-pgt-"))
    trips: list[str] = []
    server_by: collections.Counter[str] = collections.Counter()
    try:
        ctx = fresh(work / "db", f"{args.postgres}?options=-c%20search_path%3D{schema}")
        peewee_db = database.db.obj
        pid = peewee_db.execute_sql("SELECT pg_backend_pid()").fetchone()[0]

        def server_ns() -> int:
            with open(f"/proc/{pid}/schedstat") as stat:
                return int(stat.read().split()[0])

        real_cursor = peewee_db.cursor

        class Cursor:
            def __init__(self, cursor: Any) -> None:
                self._cursor = cursor

            def execute(self, sql: str, params: Any = None) -> Any:
                text = self._cursor.mogrify(sql, params).decode() if params is not None else sql
                trips.append(text)
                before = server_ns()
                try:
                    return self._cursor.execute(sql, params)
                finally:
                    server_by[shape(text)] += server_ns() - before

            def __getattr__(self, name: str) -> Any:
                return getattr(self._cursor, name)

        peewee_db.cursor = lambda *a, **k: Cursor(real_cursor(*a, **k))
        server_start, cpu_start = server_ns(), time.process_time()
        started = time.perf_counter()
        for raw in mails:
            ingest(ctx, raw, source="bench")
        wall = time.perf_counter() - started
        cpu, server = time.process_time() - cpu_start, (server_ns() - server_start) / 1e9
        del peewee_db.cursor
        store.close()
    finally:
        admin.cursor().execute(f"DROP SCHEMA {schema} CASCADE")
        admin.close()
        shutil.rmtree(work, ignore_errors=True)
    n = len(mails)
    statements = [p for t in trips for p in _STATEMENT.split(t.strip()) if p.strip()]
    commits = sum(1 for s in statements if s.strip().upper().startswith("COMMIT"))
    print(
        f"{n} mails: {len(trips) / n:.2f} round trips, {len(statements) / n:.2f} statements,"
        f" {commits / n:.2f} COMMITs a mail\n"
        f"  gateway CPU {cpu / n * 1000:.2f} ms, server CPU {server / n * 1000:.2f} ms,"
        f" wall {wall / n * 1000:.2f} ms a mail"
    )
    for text, ns in server_by.most_common(args.show):
        print(f"  {ns / n / 1e6:6.3f} ms  {text}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
