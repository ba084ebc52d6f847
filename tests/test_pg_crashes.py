"""PostgreSQL crashes: a lost processing commit, a serve killed while it holds claims.

The processing of a mail may be taken back by a crash; the mail never is.

The processing transaction commits without waiting for the server's fsync
(``write_transaction(durable=False)``): a crash of the server (or of the process,
before its COMMIT) takes the whole transaction back, and what remains is the
receipt, committed durably before the 250, still ``received`` and leased. These
tests make that state for real — a ``mailgate ingest`` process killed with -9 while
its processing transaction is open, its server session ended — and show the mail
is then processed exactly once: one ticket, one acknowledgement, whoever retries.

A ``serve`` killed with -9 while it holds outbox claims leaves them to another
process once their lease has run out, and not before.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mailgate import intake
from mailgate.context import Context
from mailgate.store import models as m
from tests.relay import free_port
from tests.support import (
    autocommit_connection,
    compose,
    config_data,
    load_config,
    start_serve,
    wait_for,
    write_config,
)

if TYPE_CHECKING:
    from tests.relay import Relay

MESSAGE_ID = "<lost-commit@customer.example>"


def _session_blocked_on_outbox(connection: Any, holder: Any) -> int | None:
    """The server session waiting for the table ``holder`` locks (only ours: the server
    is shared with other tests)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))"
            " AND query LIKE %s",
            (holder.get_backend_pid(), "%INSERT INTO outbox_item%"),
        )
        row = cursor.fetchone()
    return None if row is None else int(row[0])


def _kill_mid_processing(ctx: Context, database_url: str, raw: bytes) -> None:
    """`mailgate ingest -` stores the mail, starts processing it, and dies with -9.

    Its processing transaction is held up at its first outbox row (the test holds the
    table), then the process is killed and its server session ended: nothing of the
    processing was committed, as after a server crash that lost an unflushed commit.
    """
    holder = autocommit_connection(database_url)
    holder.autocommit = False
    with holder.cursor() as cursor:
        cursor.execute("LOCK TABLE outbox_item IN EXCLUSIVE MODE")
    watcher = autocommit_connection(database_url)
    process = subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(ctx.config.path), "ingest", "-"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(ctx.config.path).parent,
        env=dict(os.environ),
    )
    try:
        assert process.stdin is not None
        process.stdin.write(raw)
        process.stdin.close()
        backend = wait_for(lambda: _session_blocked_on_outbox(watcher, holder), timeout=30)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        with watcher.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", (backend,))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        holder.rollback()
        holder.close()

    def gone() -> bool:
        with watcher.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (backend,))
            return cursor.fetchone() is None

    wait_for(gone, timeout=30)
    watcher.close()


def _acknowledgements() -> int:
    return m.OutboxItem.select().where(m.OutboxItem.notice == "acknowledgement").count()


@pytest.mark.postgres
def test_a_mail_whose_processing_was_lost_is_processed_exactly_once_afterwards(
    ctx: Context, database_url: str
) -> None:
    raw = compose(message_id=MESSAGE_ID, subject="printer on fire")
    _kill_mid_processing(ctx, database_url, raw)

    # The receipt survived (the 250 or exit 0 depended on it); its processing did not.
    receipt = m.Receipt.get(m.Receipt.message_id == MESSAGE_ID)
    assert receipt.status == "received"
    assert m.Ticket.select().count() == 0
    assert _acknowledgements() == 0

    # The sender's retry while the lease holds: stored already, nothing done twice.
    again = intake.ingest(ctx, raw, source="pipe")
    assert again.action == "duplicate"
    assert m.Ticket.select().count() == 0

    # The lease runs out: the recovery job of two gateway processes finishes it once.
    m.Receipt.update(lease_until=m.utcnow() - dt.timedelta(seconds=1)).execute()
    first = intake.recover(ctx)
    second = intake.recover(ctx)
    assert [o.action for o in first] == ["created"]
    assert second == []
    assert m.Ticket.select().count() == 1
    assert _acknowledgements() == 1

    # Any later delivery is a duplicate of that ticket.
    late = intake.ingest(ctx, raw, source="pipe")
    assert (late.action, late.ticket) == ("duplicate", first[0].ticket)
    assert m.Ticket.select().count() == 1
    assert _acknowledgements() == 1
    assert m.Receipt.get(m.Receipt.message_id == MESSAGE_ID).status == "processed"


@pytest.mark.postgres
def test_mail_processed_after_a_lost_processing_threads_its_reply_onto_the_same_ticket(
    ctx: Context, database_url: str
) -> None:
    """A reply that comes while its parent's processing was lost waits for nothing and
    does not guess: once the parent is recovered, the next reply joins its ticket."""
    raw = compose(message_id=MESSAGE_ID, subject="printer on fire")
    _kill_mid_processing(ctx, database_url, raw)
    m.Receipt.update(lease_until=m.utcnow() - dt.timedelta(seconds=1)).execute()
    [recovered] = intake.recover(ctx)
    reply = compose(
        message_id="<reply-after-recovery@customer.example>",
        subject="Re: printer on fire",
        in_reply_to=MESSAGE_ID,
    )
    outcome = intake.ingest(ctx, reply, source="pipe")
    assert (outcome.action, outcome.ticket) == ("appended", recovered.ticket)
    assert _acknowledgements() == 1


def _statuses() -> list[str]:
    return sorted(i.status for i in m.OutboxItem.select())


@pytest.mark.postgres
def test_a_serve_killed_while_it_holds_outbox_claims_leaves_them_to_another_after_the_lease(
    tmp_path: Path, database_url: str, relay: Relay
) -> None:
    from tests.conftest import open_gateway

    data = config_data(
        tmp_path,
        database_url,
        {
            "listener": {"port": free_port()},
            "jobs": {"outbox_seconds": 1},
            "outbound": {
                "transport": "smtp",
                "batch_size": 10,
                # One connection: one notice handed over at a time, the rest only
                # claimed (several connections mark a whole round `sending`; their
                # exactly-once is tests/test_outbound.py's).
                "smtp": {
                    "host": relay.host,
                    "port": relay.port,
                    "security": "none",
                    "connections": 1,
                },
            },
        },
    )
    path = write_config(tmp_path / "mailgate.toml", data)
    ctx = open_gateway(load_config(path))
    intake.ingest(ctx, compose(), source="smtp")  # an acknowledgement and team notices
    queued = len(_statuses())
    assert queued >= 2
    relay.handler.hold = threading.Event()
    first = start_serve(path, "serve", "--no-imap")
    try:
        assert relay.handler.arrived.wait(30), "serve never sent the first notice"
        first.send_signal(signal.SIGKILL)  # the relay has one notice; the rest are claimed
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait(10)
    relay.handler.hold.set()
    assert _statuses() == sorted(["sending"] + ["claimed"] * (queued - 1))
    relay.handler.hold = None

    second = start_serve(path, "serve", "--no-imap")
    try:
        # While the dead process's lease runs, nobody sends its notices again.
        time.sleep(3)
        assert len(relay.received) == 1
        assert _statuses() == sorted(["sending"] + ["claimed"] * (queued - 1))
        # The lease runs out: the other process sends what was only claimed, and the
        # one handed over before the kill is settled as uncertain, never sent twice.
        m.OutboxItem.update(next_attempt_at=m.utcnow() - dt.timedelta(seconds=1)).execute()
        wait_for(lambda: _statuses() == sorted(["uncertain"] + ["sent"] * (queued - 1)), timeout=30)
        assert len(relay.received) == queued
        for item in m.OutboxItem.select():
            assert len(relay.handler.by_message_id(item.message_id)) == 1
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(20)
    m.db.close()


@pytest.mark.postgres
@pytest.mark.config({"lifecycle": {"pending_reminder_after": "1h"}})
def test_a_jobs_run_killed_mid_transaction_leaves_its_tickets_to_the_next_run_at_once(
    ctx: Context, database_url: str, config_path: Path
) -> None:
    """Due work is done under row locks in a transaction: a run killed with -9 holds
    nothing once its session ended, and the next run sends each reminder once."""
    from mailgate.admin import tickets as admin

    numbers = []
    for i in range(3):
        raw = compose(sender=f"customer{i}@customer.example", subject=f"Question {i}")
        outcome = intake.ingest(ctx, raw, source="smtp")
        assert outcome.ticket is not None
        admin.set_status(ctx, outcome.ticket, "pending", "admin:cli")
        numbers.append(outcome.ticket)
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    command = [sys.executable, "-m", "mailgate", "--config", str(config_path), "jobs", "run"]
    holder = autocommit_connection(database_url)
    holder.autocommit = False
    with holder.cursor() as cursor:
        cursor.execute("LOCK TABLE outbox_item IN EXCLUSIVE MODE")
    watcher = autocommit_connection(database_url)
    killed = subprocess.Popen(
        [*command, "--at", at], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        backend = wait_for(lambda: _session_blocked_on_outbox(watcher, holder), timeout=30)
        killed.send_signal(signal.SIGKILL)
        killed.wait(10)
        with watcher.cursor() as cursor:
            # The server notices a dead client when it next talks to it; a crashed
            # machine's connection ends the same way once TCP gives up.
            cursor.execute("SELECT pg_terminate_backend(%s)", (backend,))
    finally:
        if killed.poll() is None:
            killed.kill()
            killed.wait(10)
        holder.rollback()
        holder.close()
        watcher.close()
    assert m.OutboxItem.select().where(m.OutboxItem.notice == "pending_reminder").count() == 0
    done = subprocess.run([*command, "--at", at], capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    reminders = m.OutboxItem.select().where(m.OutboxItem.notice == "pending_reminder")
    assert sorted(tuple(i.recipients) for i in reminders) == sorted(
        (f"customer{i}@customer.example",) for i in range(3)
    )
    assert m.Event.select().where(m.Event.kind == "pending_reminder").count() == 3
