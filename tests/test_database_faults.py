"""Database faults must not turn into losses (issue 9), through the pipe and the listener.

The faults are real database errors raised by the real database: a PostgreSQL trigger
on the ``ticket`` table raises them with the SQLSTATE a busy, full or corrupt server
gives (lock_not_available, disk_full, data_corrupted, unique_violation), so the mail is
stored first and fails while it is processed, as in production.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailgate import store
from mailgate.context import Context
from mailgate.store import models as m
from mailgate.store import sql, views
from tests.relay import free_port
from tests.support import compose, config_data, load_config, wait_for, write_config


def pipe(config_path: Path, raw: bytes) -> tuple[int, str, str]:
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config_path), "ingest", "-"],
        input=raw,
        capture_output=True,
        timeout=120,
        cwd=config_path.parent,
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


class Faults:
    """Raises one SQLSTATE on every INSERT into ``ticket`` until ``clear()``."""

    def __init__(self, url: str) -> None:
        import psycopg2

        self.conn = psycopg2.connect(url)
        self.conn.autocommit = True

    def raise_on_ticket_insert(self, sqlstate: str, message: str) -> None:
        with self.conn.cursor() as cur:
            cur.execute(
                "CREATE OR REPLACE FUNCTION mailgate_fault() RETURNS trigger AS $$ BEGIN"
                f" RAISE EXCEPTION '{message}' USING ERRCODE = '{sqlstate}'; END $$"
                " LANGUAGE plpgsql"
            )
            cur.execute("DROP TRIGGER IF EXISTS mailgate_fault ON ticket")
            cur.execute(
                "CREATE TRIGGER mailgate_fault BEFORE INSERT ON ticket"
                " FOR EACH ROW EXECUTE FUNCTION mailgate_fault()"
            )

    def clear(self) -> None:
        with self.conn.cursor() as cur:
            cur.execute("DROP TRIGGER IF EXISTS mailgate_fault ON ticket")


@pytest.fixture
def faults(database_url: str, ctx: Context) -> Iterator[Faults]:
    assert database_url.startswith("postgresql"), "faults are raised by a PostgreSQL trigger"
    injected = Faults(database_url)
    yield injected
    injected.clear()
    injected.conn.close()


@pytest.mark.postgres
def test_a_busy_database_never_uses_up_processing_attempts(
    ctx: Context, config_path: Path, faults: Faults
) -> None:
    faults.raise_on_ticket_insert("55P03", 'could not obtain lock on relation "ticket"')
    raw = compose(subject="Sent while the database was busy")
    for _ in range(5):  # more deliveries than MAX_ATTEMPTS: none may give the mail up
        code, out, err = pipe(config_path, raw)
        assert code == 75, (out, err)
        assert "database busy" in err and "database.busy" in err
    faults.clear()
    code, out, err = pipe(config_path, raw)
    assert code == 0 and out.startswith("created ["), (out, err)
    assert m.Receipt.select().count() == 1


@pytest.mark.postgres
@pytest.mark.parametrize(
    ("sqlstate", "message", "label", "log_line"),
    [
        ("53100", "could not extend file: No space left on device", "database disk full",
         "database.disk_full"),
        ("XX001", "invalid page in block 7 of relation base/16384/16385", "database corrupt",
         "database.corrupt"),
    ],
)  # fmt: skip
def test_disk_full_and_corruption_keep_the_mail_at_the_mta_each_with_its_log_line(
    ctx: Context,
    config_path: Path,
    faults: Faults,
    sqlstate: str,
    message: str,
    label: str,
    log_line: str,
) -> None:
    faults.raise_on_ticket_insert(sqlstate, message)
    raw = compose(subject="Sent while the database was in trouble")
    code, out, err = pipe(config_path, raw)
    assert code == 75, (out, err)
    assert label in err and log_line in err
    assert "database unavailable" not in err
    faults.clear()
    code, out, _ = pipe(config_path, raw)
    assert code == 0 and out.startswith("created [")


@pytest.mark.postgres
def test_a_mail_quarantined_for_a_temporary_reason_is_retried_by_itself(
    tmp_path: Path, database_url: str, faults: Faults, serve_in_thread: Any
) -> None:
    faults.raise_on_ticket_insert("23505", "duplicate key value violates unique constraint")
    data = config_data(
        tmp_path,
        database_url,
        {"listener": {"port": free_port()}, "jobs": {"recover_seconds": 1}},
    )
    path = write_config(tmp_path / "serve.toml", data)
    code, out, _ = pipe(path, compose(subject="A conflict that clears"))
    assert code == 0 and out.startswith("quarantined (temporary: database conflict")
    faults.clear()
    from tests.conftest import open_gateway

    serve_in_thread(open_gateway(load_config(path)), imap=False)
    receipt = wait_for(lambda: m.Receipt.get_or_none(m.Receipt.status == "processed"), timeout=20)
    assert receipt.action == "created"
    assert views.ticket(m.Ticket.get().number).subject == "A conflict that clears"


def test_a_mail_with_33000_cc_becomes_a_ticket_with_the_collaborator_cap(
    ctx: Context, config_path: Path
) -> None:
    cc = ",\r\n ".join(f"p{i}@c{i % 50}.example" for i in range(33_000))
    raw = compose(subject="Everyone").replace(
        b"Subject:", b"Cc: " + cc.encode() + b"\r\nSubject:", 1
    )
    code, out, err = pipe(config_path, raw)
    assert code == 0 and out.startswith("created ["), (out, err[-500:])
    number = re.search(r"#(\d+)\]", out)
    assert number is not None
    detail = views.ticket_detail(ctx.config, views.ticket(int(number.group(1))))
    assert len(detail["collaborators"]) == 20
    (message,) = [x for x in detail["messages"] if x["direction"] == "in"]
    assert len(message["cc"]) == 33_000  # recorded on the message as written


@pytest.mark.postgres
def test_statements_used_again_are_prepared_and_errors_stay_what_they_were(ctx: Context) -> None:
    """PostgreSQL prepares a hot-path statement on its second use. One the server cannot
    prepare (here: a parameter of no inferable type) still runs inside its transaction,
    whose other writes stay; a statement's own error (a key taken) is raised as before."""
    insert = "INSERT INTO setting (key, value) VALUES (?, ?)"
    with store.write_transaction():
        sql.run(insert, "prepared-a", 1)
        for _ in range(3):
            assert sql.value("SELECT ? IS NULL", None) is True
        sql.run(insert, "prepared-b", 2)  # its second use: prepared
        for _ in range(3):
            assert sql.value("SELECT value FROM setting WHERE key = ?", "prepared-b") == 2
    with pytest.raises(store.IntegrityError), store.write_transaction():
        sql.run(insert, "prepared-b", 3)
    assert sql.value("SELECT value FROM setting WHERE key = ?", "prepared-b") == 2
    for _ in range(3):  # a % of the text's own, prepared too
        assert sql.value("SELECT COUNT(*) FROM setting WHERE key LIKE 'prepared-%'") == 2
    assert sql.value("SELECT COUNT(*) FROM pg_prepared_statements") >= 2


@pytest.mark.postgres
def test_writes_sent_later_are_prepared_and_their_errors_still_roll_back(ctx: Context) -> None:
    """The writes nobody reads back (``sql.later``) travel with the next statement, from
    their second use on as a prepared statement: every one is written, one the server
    cannot prepare is sent as text and written too, and a key taken by one of them
    still takes the whole transaction back."""
    insert = "INSERT INTO setting (key, value) VALUES (?, ?)"
    unpreparable = "UPDATE setting SET value = value + 1 WHERE key = ? AND ? IS NULL"
    for i in range(4):
        with store.write_transaction():
            sql.later(insert, f"later-{i}", i)
            sql.later(unpreparable, f"later-{i}", None)
    assert sql.rows("SELECT key, value FROM setting WHERE key LIKE 'later-%' ORDER BY key") == [
        (f"later-{i}", i + 1) for i in range(4)
    ]
    prepared = "SELECT COUNT(*) FROM pg_prepared_statements WHERE statement LIKE ?"
    assert sql.value(prepared, "%PREPARE % AS INSERT INTO setting (key, value) VALUES ($1, $2)%")
    with pytest.raises(store.IntegrityError), store.write_transaction():
        sql.later(insert, "later-new", 9)
        sql.later(insert, "later-0", 9)  # taken: raised by the COMMIT, inside the transaction
    assert sql.value("SELECT COUNT(*) FROM setting WHERE key = 'later-new'") == 0
