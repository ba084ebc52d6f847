"""Several gateway processes on one PostgreSQL give exactly the result of one process.

Replies arrive while their parent is still being processed by the other process
(``tests/replay.py``); the grouping of Message-IDs into tickets must be the one a
single process makes of the same mails in the same order, with one
acknowledgement per ticket, final when the last SMTP answer came.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from pathlib import Path

import pytest

from mailgate import intake, store
from mailgate.context import Context
from mailgate.errors import TemporaryFailure
from mailgate.store import inflight, tickets
from mailgate.store import models as m
from tests import replay
from tests.support import compose

MAILS = 100
PARTS = 40  # each original takes a while: its replies meet it in flight


@pytest.mark.postgres
def test_two_serve_processes_thread_replies_exactly_as_one_process_does(
    tmp_path: Path, database_url: str
) -> None:
    mails = replay.conversations(MAILS, parts=PARTS)
    replies = sum(m.is_reply for m in mails)
    assert replies >= MAILS // 3  # the corpus really has replies right behind their parents
    base = os.environ["MAILGATE_TEST_DATABASE_URL"]
    single_schema = f"single_{uuid.uuid4().hex[:10]}"
    single_url = replay.new_schema(base, single_schema)
    try:
        with replay.gateways(tmp_path / "one", single_url, 1) as ports:
            replay.replay(mails, ports, single_url)
        one = replay.result(single_url)
    finally:
        replay.drop_schema(base, single_schema)
    with replay.gateways(tmp_path / "two", database_url, 2) as ports:
        replay.replay(mails, ports, database_url)
    two = replay.result(database_url)  # read after the last answer: no repair job ran

    # One process threads every conversation onto its own ticket (the reference is right).
    assert one.misthreaded(mails) == (0, 0)
    assert len(one.groups) == len({m.conversation for m in mails})
    assert two.misthreaded(mails) == (0, 0)
    assert two.groups == one.groups
    assert two.unfinished == 0
    assert sorted(two.acknowledgements.values()) == [1] * len(two.groups)


@pytest.mark.postgres
def test_a_deadlock_keeps_the_connection_and_what_it_marks_in_flight(ctx: Context) -> None:
    """The loser of a deadlock retries on the same session, still marking its mail in flight
    (a closed connection would let a waiting reply go ahead of its parent)."""
    first, second = (
        intake.ingest(ctx, compose(subject=f"Ticket {i}"), source="pipe").ticket for i in (1, 2)
    )
    ids = [m.Ticket.get(m.Ticket.number == n).id for n in (first, second)]
    both_locked = threading.Barrier(2, timeout=30)
    checked = threading.Event()
    errors: dict[str, BaseException] = {}

    def process(name: str, order: list[int]) -> None:
        with store.write_transaction():
            assert inflight.hold(name)
        try:
            with store.write_transaction():
                tickets.lock(order[0])
                both_locked.wait()
                tickets.lock(order[1])
        except TemporaryFailure as exc:
            errors[name] = exc
        checked.wait(30)
        store.close()

    threads = [
        threading.Thread(target=process, args=(f"<{name}@customer.example>", order))
        for name, order in (("a", ids), ("b", ids[::-1]))
    ]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 30
    while not errors and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        (lost,) = errors.values()
        assert "deadlock" in str(lost)
        with store.write_transaction():  # both still held: neither session was dropped
            assert not inflight.hold("<a@customer.example>")
            assert not inflight.hold("<b@customer.example>")
    finally:
        checked.set()
        for thread in threads:
            thread.join(30)


@pytest.mark.postgres
def test_waiting_for_a_mail_in_flight_ends_when_it_is_let_go_or_the_time_is_up(
    ctx: Context,
) -> None:
    held, release, done = threading.Event(), threading.Event(), threading.Event()

    def other_process() -> None:
        with store.write_transaction():
            assert inflight.hold("<parent@customer.example>")
        held.set()
        release.wait(30)
        with store.write_transaction():
            inflight.let_go("<parent@customer.example>")
        done.set()
        store.close()

    thread = threading.Thread(target=other_process)
    thread.start()
    try:
        assert held.wait(30)
        started = time.monotonic()
        with store.single_statement():  # as intake/order.py calls it: no transaction
            assert not inflight.wait(["<parent@customer.example>"], 0.5)
        assert 0.4 < time.monotonic() - started < 5
        threading.Timer(0.5, release.set).start()
        with store.single_statement():
            assert inflight.wait(["<parent@customer.example>", "<other@x.example>"], 20)
        assert done.wait(5)
    finally:
        release.set()
        thread.join(30)


@pytest.mark.postgres
def test_a_processed_mail_is_let_go_with_its_commit_and_a_failed_one_after_it(
    ctx: Context,
) -> None:
    """Whatever became of a mail — a ticket, a reply, a duplicate, or a processing that
    was quarantined from inside its transaction — no session holds it in flight once ingest returned (a reply
    in another process must not wait for it until its time is up)."""
    first = compose(subject="Card blocked", message_id="<p1@customer.example>")
    reply = compose(
        subject="Re: Card blocked",
        message_id="<p2@customer.example>",
        headers={"In-Reply-To": "<p1@customer.example>"},
    )
    assert intake.ingest(ctx, first, source="pipe").action == "created"
    assert intake.ingest(ctx, reply, source="pipe").action == "appended"
    assert intake.ingest(ctx, reply, source="pipe").action == "duplicate"
    # No sender at all: quarantined from inside the processing, which rolls back.
    third = (
        b"To: support@example.org\r\nSubject: who\r\nMessage-ID: <p3@customer.example>\r\n\r\nx\r\n"
    )
    assert intake.ingest(ctx, third, source="pipe").action == "quarantined"
    names = ["<p1@customer.example>", "<p2@customer.example>", "<p3@customer.example>"]
    assert not any(inflight.holds(name) for name in names)
    taken: list[bool] = []

    def other_process() -> None:
        with store.write_transaction():
            taken.extend(inflight.hold(name) for name in names)
        store.close()  # its session's locks end with it

    thread = threading.Thread(target=other_process)
    thread.start()
    thread.join(30)
    assert taken == [True, True, True]


@pytest.mark.postgres
def test_a_contact_another_process_adds_at_the_same_moment_is_found_not_added_twice(
    ctx: Context,
) -> None:
    """The contact of an address is found or added in one statement; one that another
    session adds after this transaction began (its insert waits for that session's
    commit, then does nothing) is read back instead."""
    from mailgate.store import people

    inserted, commit = threading.Event(), threading.Event()

    def other_process() -> None:
        with store.write_transaction():
            people.contact("dana@customer.example", "Dana")
            inserted.set()
            commit.wait(30)
        store.close()

    thread = threading.Thread(target=other_process)
    thread.start()
    try:
        assert inserted.wait(30)
        threading.Timer(0.3, commit.set).start()
        with store.write_transaction():
            found = people.contact("dana@customer.example", "Dana D.")
    finally:
        commit.set()
        thread.join(30)
    assert found.id == m.Contact.get(m.Contact.email == "dana@customer.example").id
    assert m.Contact.select().where(m.Contact.email == "dana@customer.example").count() == 1


@pytest.mark.postgres
def test_a_reply_whose_parent_is_in_flight_elsewhere_waits_and_lands_on_its_ticket(
    ctx: Context,
) -> None:
    """The processing transaction's first statement finds the parent still in flight: it
    rolls back, waits for the parent's process to let go, and threads the reply then."""
    import hashlib

    from mailgate.envelope import Envelope
    from mailgate.intake import order, receipts

    parent = compose(subject="Card blocked", message_id="<parent@customer.example>")
    reply = compose(
        subject="Re: Card blocked",
        message_id="<reply@customer.example>",
        headers={"In-Reply-To": "<parent@customer.example>"},
    )
    stored, go = threading.Event(), threading.Event()
    outcomes: list[intake.Outcome] = []

    def other_process() -> None:  # stores the parent, then takes a while to process it
        sha256 = hashlib.sha256(parent).hexdigest()
        ctx.blobs.put(parent, sha256)
        message_id, sender = receipts.peek(parent, sha256)
        with order.in_flight(message_id, taken=True):
            receipt, _ = receipts.receive(
                message_id, sha256, sender, len(parent), "pipe", "", Envelope(),
                receipts.fingerprint(parent), in_flight=message_id,
            )  # fmt: skip
            stored.set()
            go.wait(30)
            outcomes.append(intake.process(ctx, receipt, parent, Envelope()))
        store.close()

    thread = threading.Thread(target=other_process)
    thread.start()
    try:
        assert stored.wait(30)
        threading.Timer(0.5, go.set).start()
        answered = intake.ingest(ctx, reply, source="pipe")
    finally:
        go.set()
        thread.join(30)
    (created,) = outcomes
    assert created.action == "created"
    assert answered.action == "appended"
    assert answered.ticket == created.ticket
