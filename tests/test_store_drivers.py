"""peewee is imported without psycopg2, which comes when a PostgreSQL database is opened
(mailgate/store/drivers.py): a process on SQLite never pays for the driver."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import json, sys, uuid
from mailgate import store
from mailgate.store.db import db
before = "psycopg2" in sys.modules
store.open_database(sys.argv[1])
with store.write_transaction():
    row = db.execute_sql("SELECT 1 + 1").fetchone()
    if not store.is_sqlite():  # peewee's UUID adapter, as its own import registers it
        row = (row[0], db.execute_sql("SELECT %s::text", (uuid.UUID(int=1),)).fetchone()[0])
state = db.obj.in_transaction()
store.close()
print(json.dumps([before, "psycopg2" in sys.modules, list(row), state]))
"""


def probe(url: str) -> list[object]:
    root = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(root)}
    done = subprocess.run(
        [sys.executable, "-c", PROBE, url], capture_output=True, text=True, env=env, check=True
    )
    result: list[object] = json.loads(done.stdout)
    return result


def test_the_driver_comes_with_a_postgresql_database_only(database_url: str) -> None:
    before, after, row, in_transaction = probe(database_url)
    assert before is False
    if database_url.startswith("sqlite"):
        assert (after, row) == (False, [2])
    else:
        assert (after, row) == (True, [2, "00000000-0000-0000-0000-000000000001"])
    assert in_transaction is False
