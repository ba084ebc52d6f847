"""Benchmark: where one PostgreSQL server stops — our per-mail transactions against pgbench.

    python bench/pg_commits.py [--postgres URL] [--count 500] [--clients 1 2 4]
                               [--seconds 5] [--repeat 3] [--only ingest|commits]

Two figures, each measured in this one run against its own reference:

* **ingest, one process**: the same realistic mails through ``mailgate.intake.ingest``
  into a fresh SQLite file and into a fresh PostgreSQL schema; best of ``--repeat``,
  alternating; prints PostgreSQL ÷ SQLite.
* **the database's ceiling**: the statements one process sent for ``--count`` mails
  (captured with their values, BEGIN/COMMIT included, exactly as the driver sent them)
  are replayed by 1, 2, 4… connections at once, each into a schema of its own prepared
  the same way (so the ids the statements name match), with no parsing, planning or
  rendering in between — what the server can take of our mail shape, in mails/s and
  commits/s — next to ``pgbench`` running a one-row INSERT and COMMIT per transaction
  with as many clients on the same server (our own loop when ``pgbench`` is not
  installed). Divide by the per-process rate to see how many gateway processes one
  server carries.

Schemas are named ``bench_pgc_*`` and dropped after. Runs against whatever mailgate
``PYTHONPATH`` names (to compare trees: ``PYTHONPATH=/other/tree python bench/pg_commits.py``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

# Appended, not prepended: PYTHONPATH decides which mailgate is measured.
sys.path.append(str(Path(__file__).resolve().parents[1]))

import psycopg2

from bench.corpus import corpus
from bench.ingest import fresh
from mailgate import store
from mailgate.intake import ingest
from mailgate.store import db as database

_NAMESPACE = 0x4D474946  # store/inflight.py: the advisory locks of mails in flight


def schema_url(url: str, schema: str) -> str:
    return f"{url}?options=-c%20search_path%3D{schema}"


def admin(url: str) -> Any:
    connection = psycopg2.connect(url)
    connection.autocommit = True
    return connection


def ingest_rates(work: Path, url: str, mails: list[bytes], repeat: int) -> None:
    print(f"ingest, one process, {len(mails)} realistic mails (best of {repeat}, alternating)")
    best = {"SQLite": 0.0, "PostgreSQL": 0.0}
    for round_ in range(repeat):
        for label in best:
            schema = f"bench_pgc_{uuid.uuid4().hex[:8]}"
            if label == "PostgreSQL":
                with admin(url) as connection:
                    connection.cursor().execute(f"CREATE SCHEMA {schema}")
            try:
                ctx = fresh(
                    work / f"{label}-{round_}",
                    schema_url(url, schema) if label == "PostgreSQL" else None,
                )
                started = time.perf_counter()
                for raw in mails:
                    ingest(ctx, raw, source="bench")
                rate = len(mails) / (time.perf_counter() - started)
                store.close()
            finally:
                if label == "PostgreSQL":
                    with admin(url) as connection:
                        connection.cursor().execute(f"DROP SCHEMA {schema} CASCADE")
            best[label] = max(best[label], rate)
            print(f"  {label:<11} round {round_ + 1}: {rate:7.1f} mails/s")
    print(
        f"  → PostgreSQL ÷ SQLite = {best['PostgreSQL'] / best['SQLite']:.2f}"
        f"  ({best['PostgreSQL']:.1f} vs {best['SQLite']:.1f} mails/s; target ≥ 0.60)\n"
    )


class _Recorder:
    """Every statement the driver is given, with its values, in order."""

    def __init__(self) -> None:
        self.statements: list[str] = []
        self.mail_ends: list[int] = []


def capture(work: Path, url: str, mails: list[bytes]) -> _Recorder:
    """Ingest ``mails`` once and keep the statements they sent (after the setup's)."""
    schema = f"bench_pgc_{uuid.uuid4().hex[:8]}"
    with admin(url) as connection:
        connection.cursor().execute(f"CREATE SCHEMA {schema}")
    recorder = _Recorder()
    try:
        ctx = fresh(work / "capture", schema_url(url, schema))
        peewee_db = database.db.obj
        real_cursor = peewee_db.cursor

        class Cursor:
            def __init__(self, cursor: Any) -> None:
                self._cursor = cursor

            def execute(self, sql: str, params: Any = None) -> Any:
                recorder.statements.append(
                    self._cursor.mogrify(sql, params).decode()
                    if params is not None
                    else sql
                )
                return self._cursor.execute(sql, params)

            def __getattr__(self, name: str) -> Any:
                return getattr(self._cursor, name)

        peewee_db.cursor = lambda *a, **k: Cursor(real_cursor(*a, **k))
        for raw in mails:
            ingest(ctx, raw, source="bench")
            recorder.mail_ends.append(len(recorder.statements))
        del peewee_db.cursor
        store.close()
    finally:
        with admin(url) as connection:
            connection.cursor().execute(f"DROP SCHEMA {schema} CASCADE")
    return recorder


def prepared_schemas(work: Path, url: str, count: int) -> list[str]:
    """``count`` schemas in the state the captured statements started from."""
    names = []
    for i in range(count):
        schema = f"bench_pgc_{uuid.uuid4().hex[:8]}"
        with admin(url) as connection:
            connection.cursor().execute(f"CREATE SCHEMA {schema}")
        names.append(schema)
        fresh(work / f"replay-{i}", schema_url(url, schema))
        store.close()
    return names


def replay(url: str, schemas: list[str], recorder: _Recorder) -> tuple[float, int]:
    """All clients replay the captured statements at once; (seconds, commits sent)."""
    commits = sum(1 for s in recorder.statements if s.rstrip().upper().endswith("COMMIT"))
    ready = threading.Barrier(len(schemas) + 1)
    errors: list[Exception] = []

    def client(index: int, schema: str) -> None:
        connection = psycopg2.connect(schema_url(url, schema))
        connection.autocommit = True
        cursor = connection.cursor()
        # Each client's mails in flight under a lock namespace of its own.
        statements = [
            s.replace(f"({_NAMESPACE},", f"({_NAMESPACE + 1 + index},")
            for s in recorder.statements
        ]
        ready.wait()
        try:
            for statement in statements:
                cursor.execute(statement)
        except psycopg2.Error as exc:  # reported below; the others go on
            errors.append(exc)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=client, args=(i, s), daemon=True) for i, s in enumerate(schemas)
    ]
    for thread in threads:
        thread.start()
    ready.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    if errors:
        raise RuntimeError(f"replay failed: {errors[0]}")
    return time.perf_counter() - started, commits * len(schemas)


def one_row_commits(url: str, clients: int, seconds: float) -> float:
    """Transactions/s of a one-row INSERT + COMMIT with ``clients`` connections."""
    schema = f"bench_pgc_{uuid.uuid4().hex[:8]}"
    with admin(url) as connection:
        connection.cursor().execute(
            f"CREATE SCHEMA {schema}; CREATE TABLE {schema}.one_row"
            " (id BIGSERIAL PRIMARY KEY, at TIMESTAMP NOT NULL DEFAULT now(), v INTEGER)"
        )
    try:
        pgbench = shutil.which("pgbench")
        if pgbench:
            return _pgbench(pgbench, url, schema, clients, seconds)
        return _own_loop(url, schema, clients, seconds)
    finally:
        with admin(url) as connection:
            connection.cursor().execute(f"DROP SCHEMA {schema} CASCADE")


def _pgbench(pgbench: str, url: str, schema: str, clients: int, seconds: float) -> float:
    parts = urlparse(url)
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(f"INSERT INTO {schema}.one_row (v) VALUES (1);\n")
    command = [pgbench, "-n", "-f", script.name, "-c", str(clients), "-j", str(clients)]
    command += ["-T", str(max(1, round(seconds)))]
    command += ["-h", parts.hostname or "127.0.0.1", "-p", str(parts.port or 5432)]
    if parts.username:
        command += ["-U", parts.username]
    command.append(parts.path.lstrip("/") or "postgres")
    env = dict(os.environ, PGPASSWORD=parts.password or "")
    try:
        out = subprocess.run(command, capture_output=True, text=True, env=env, check=True).stdout
    finally:
        os.unlink(script.name)
    found = re.search(r"tps = ([0-9.]+)", out)
    if found is None:
        raise RuntimeError(f"pgbench said: {out}")
    return float(found.group(1))


def _own_loop(url: str, schema: str, clients: int, seconds: float) -> float:
    done = [0] * clients

    def client(index: int) -> None:
        connection = psycopg2.connect(url)
        connection.autocommit = True
        cursor = connection.cursor()
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            cursor.execute(f"BEGIN; INSERT INTO {schema}.one_row (v) VALUES (1)")
            cursor.execute("COMMIT")
            done[index] += 1
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(done) / seconds


def ceiling(work: Path, url: str, mails: list[bytes], clients: list[int], seconds: float) -> None:
    recorder = capture(work, url, mails)
    statements = len(recorder.statements)
    commits = sum(1 for s in recorder.statements if s.rstrip().upper().endswith("COMMIT"))
    print(
        f"the database's ceiling: {len(mails)} mails sent {statements} statements"
        f" ({statements / len(mails):.1f} round trips and {commits / len(mails):.2f} COMMITs"
        " a mail), replayed with no Python work in between"
    )
    print(
        f"{'clients':>7} {'our mails/s':>11} {'commits/s':>10} {'pgbench 1-row tps':>17}"
        f" {'mails/s at 2 COMMITs':>21}"
    )
    for count in clients:
        schemas = prepared_schemas(work, url, count)
        try:
            seconds_taken, sent = replay(url, schemas, recorder)
        finally:
            with admin(url) as connection:
                for schema in schemas:
                    connection.cursor().execute(f"DROP SCHEMA {schema} CASCADE")
        tps = one_row_commits(url, count, seconds)
        print(
            f"{count:>7} {len(mails) * count / seconds_taken:>11.1f}"
            f" {sent / seconds_taken:>10.1f} {tps:>17.1f} {tps / 2:>21.1f}"
        )
    print()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--postgres", default=os.environ.get("MAILGATE_TEST_DATABASE_URL"))
    parser.add_argument("--count", type=int, default=500)
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--only", choices=["ingest", "commits"])
    args = parser.parse_args()
    if not args.postgres:
        parser.error("--postgres URL (or MAILGATE_TEST_DATABASE_URL) is needed")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    mails = corpus(args.count)
    work = Path(tempfile.mkdtemp(prefix="mailgate-pgc-"))
    try:
        if args.only in (None, "ingest"):
            ingest_rates(work, args.postgres, mails, args.repeat)
        if args.only in (None, "commits"):
            ceiling(work, args.postgres, mails, args.clients, args.seconds)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
