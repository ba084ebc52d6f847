"""Outbound notices: templates, the transactional outbox, real SMTP delivery, threading headers."""

from __future__ import annotations

import dataclasses
import datetime as dt
import email
import os
import re
import signal
import subprocess
import sys
import threading
import time
from email import policy
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import pytest

from mailgate import lifecycle, outbox, reactions, store
from mailgate.admin.templates import check_templates
from mailgate.context import Context
from mailgate.errors import UsageError
from mailgate.events import Journal
from mailgate.intake import ingest
from mailgate.notices import mail_of
from mailgate.store import models as m
from mailgate.store import views as queries
from tests.relay import Relay
from tests.support import compose, config_data, reply_to, write_config


def deliver(ctx: Context) -> outbox.Report:
    return outbox.deliver(ctx.config)


def items(notice: str | None = None) -> list[m.OutboxItem]:
    query = m.OutboxItem.select().order_by(m.OutboxItem.id)
    if notice:
        query = query.where(m.OutboxItem.notice == notice)
    return list(query)


def header(msg: email.message.Message, name: str) -> str:
    return str(make_header(decode_header(msg[name])))


def test_acknowledgement_reaches_the_customer_with_threading_headers(
    smtp_ctx: Context, relay: Relay
) -> None:
    raw = compose(
        sender="Jörg Müller <joerg@kunde.example>",
        subject="Überweisung hängt 🙁 [Ticket#2026112210000012]",
    )
    created = ingest(smtp_ctx, raw, source="smtp")
    report = deliver(smtp_ctx)
    assert report.sent == len(items()) and report.failed == 0
    (ack,) = [r for r in relay.received if r.rcpt_tos == ["joerg@kunde.example"]]
    msg = ack.message
    customer = email.message_from_bytes(raw)
    assert msg["In-Reply-To"] == customer["Message-ID"]
    assert customer["Message-ID"] in msg["References"]
    assert msg["Message-ID"].endswith("@helpdesk.example.org>")
    subject = str(msg["Subject"])
    assert subject.startswith(f"[EB#{created.ticket}] Überweisung hängt 🙁")
    assert "[Ticket#2026112210000012]" in subject
    assert str(msg["To"]) == "Jörg Müller <joerg@kunde.example>"
    # The ticket's number and a token signed for the requester (a reply to it may add Cc).
    assert re.fullmatch(
        rf"support\+{created.ticket}-[a-z0-9]{{16}}@example\.org",
        msg["Reply-To"].addresses[0].addr_spec,
    )
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["X-Auto-Response-Suppress"] == "All"
    assert msg["X-Mailgate-Loop"] == "helpdesk.example.org"
    assert msg["Thread-Topic"] and msg["Thread-Index"]
    assert msg.get_content_type() == "multipart/alternative"
    text = msg.get_body(("plain",)).get_content()
    assert f"[EB#{created.ticket}]" in text
    assert ack.mail_from == "support@example.org"
    # The stored outbound message is found again by its Message-ID.
    assert m.Message.get(m.Message.message_id == msg["Message-ID"]).direction == "out"


def test_round_trip_customer_reply_to_the_acknowledgement_lands_quote_stripped(
    smtp_ctx: Context, relay: Relay
) -> None:
    created = ingest(smtp_ctx, compose(), source="smtp")
    deliver(smtp_ctx)
    (ack,) = [r for r in relay.received if r.rcpt_tos == ["carla@customer.example"]]
    reply = reply_to(
        ack.content,
        sender="Carla Customer <carla@customer.example>",
        body="It is still down this morning.",
    )
    outcome = ingest(smtp_ctx, reply, source="smtp")
    assert (outcome.action, outcome.ticket) == ("appended", created.ticket)
    detail = queries.ticket_detail(smtp_ctx.config, queries.ticket(created.ticket))
    last_in = [x for x in detail["messages"] if x["direction"] == "in"][-1]
    assert last_in["text"] == "It is still down this morning."


def test_our_message_ids_sort_by_the_time_they_were_made_and_thread_replies(
    smtp_ctx: Context, relay: Relay
) -> None:
    """Issue 16: our Message-IDs lead with the time they were made (so the unique indexes
    on them take each new one on their last page), and are still unique, unguessable and
    what a reply to the notice is threaded by."""
    first = ingest(smtp_ctx, compose(subject="Terminal down"), source="smtp")
    ingest(smtp_ctx, compose(subject="Invoice wrong", sender="bo@customer.example"), source="smtp")
    ids = [i.message_id for i in items()]
    made = [mid[1:13] for mid in ids]  # the time they were made, in ms, leads
    assert len(ids) >= 4 and made == sorted(made) and len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"<[0-9a-f]{32}\.\d+@helpdesk\.example\.org>", mid) for mid in ids)
    assert deliver(smtp_ctx).sent == len(ids)
    (ack,) = [r for r in relay.received if r.rcpt_tos == ["carla@customer.example"]]
    assert ack.message["Message-ID"] in ids
    reply = reply_to(ack.content, sender="carla@customer.example", body="Still down.")
    outcome = ingest(smtp_ctx, reply, source="smtp")
    assert (outcome.action, outcome.ticket) == ("appended", first.ticket)


def test_a_batch_goes_over_the_configured_connections_kept_open(
    smtp_ctx: Context, relay: Relay
) -> None:
    for i in range(5):
        ingest(smtp_ctx, compose(sender=f"c{i}@customer.example"), source="smtp")
    report = deliver(smtp_ctx)
    assert report.sent == 15  # an acknowledgement and two queue notices each
    assert smtp_ctx.config.outbound.smtp.connections == 4
    sessions = [r.session for r in relay.received]
    assert len(set(sessions)) == 4 and max(map(sessions.count, sessions)) == 4


def test_a_connection_that_breaks_mid_batch_loses_nothing_and_doubles_nothing(
    smtp_ctx: Context, relay: Relay
) -> None:
    for i in range(5):
        ingest(smtp_ctx, compose(sender=f"c{i}@customer.example"), source="smtp")
    relay.handler.drop_at = {6}  # a mail of the second round, its connection gone
    report = deliver(smtp_ctx)
    # The round's other mails were answered 250 and count as sent; the broken one is
    # queued again, the rest of the batch waits for the next run.
    assert (report.sent, report.retried) == (7, 1)
    assert len(relay.received) == 7
    statuses = [i.status for i in items()]
    assert statuses.count("sent") == 7 and statuses.count("queued") == 8
    broken = [i for i in items() if i.status == "queued" and i.attempts == 1]
    assert len(broken) == 1 and "connection" in broken[0].last_error
    m.OutboxItem.update(next_attempt_at=m.utcnow()).execute()
    assert deliver(smtp_ctx).sent == 8
    assert {i.status for i in items()} == {"sent"}
    for item in items():
        assert len(relay.handler.by_message_id(item.message_id)) == 1, item.notice


def test_a_relay_that_takes_fewer_connections_gets_everything_over_those(
    smtp_ctx: Context, relay: Relay
) -> None:
    relay.handler.max_connections = 2  # the third and fourth get 421 at the greeting
    for i in range(5):
        ingest(smtp_ctx, compose(sender=f"c{i}@customer.example"), source="smtp")
    report = deliver(smtp_ctx)
    assert (report.sent, report.retried, report.failed) == (15, 0, 0)
    assert {i.status for i in items()} == {"sent"}
    assert len({r.session for r in relay.received}) == 2
    for item in items():
        assert len(relay.handler.by_message_id(item.message_id)) == 1


@pytest.mark.config({"outbound": {"smtp": {"connections": 1}}})
def test_one_connection_when_configured(smtp_ctx: Context, relay: Relay) -> None:
    for i in range(5):
        ingest(smtp_ctx, compose(sender=f"c{i}@customer.example"), source="smtp")
    assert deliver(smtp_ctx).sent == 15
    assert len({r.session for r in relay.received}) == 1


def test_temporary_failure_is_retried_with_backoff(smtp_ctx: Context, relay: Relay) -> None:
    ingest(smtp_ctx, compose(), source="smtp")
    relay.handler.data_answer = "451 4.3.0 try again later"
    report = deliver(smtp_ctx)
    assert report.sent == 0 and report.retried >= 1
    first = items()[0]
    assert first.status == "queued" and first.attempts == 1 and "451" in first.last_error
    assert first.next_attempt_at > m.utcnow() + dt.timedelta(seconds=20)
    assert deliver(smtp_ctx).sent == 0  # not due yet
    relay.handler.data_answer = "250 2.0.0 Ok"
    m.OutboxItem.update(next_attempt_at=m.utcnow()).execute()
    assert deliver(smtp_ctx).sent == 3
    assert {i.status for i in items()} == {"sent"}


@pytest.mark.config({"outbound": {"smtp": {"port": 1}}})
def test_relay_unreachable_keeps_everything_queued(smtp_ctx: Context) -> None:
    ingest(smtp_ctx, compose(), source="smtp")
    report = deliver(smtp_ctx)
    assert report.sent == 0
    statuses = [i.status for i in items()]
    assert statuses == ["queued"] * 3
    assert "unreachable" in items()[0].last_error


@pytest.mark.config({"outbound": {"smtp": {"port": 1}}})
def test_a_relay_that_is_down_costs_no_composing(smtp_ctx: Context, relay: Relay) -> None:
    """serve tries every few seconds; composing a whole batch each time to throw it away
    took a core's third while mail came in and the relay was down."""
    for i in range(20):
        ingest(smtp_ctx, compose(sender=f"c{i}@customer.example"), source="smtp")
    started = time.process_time()
    for _ in range(3):
        assert deliver(smtp_ctx).sent == 0
        m.OutboxItem.update(next_attempt_at=m.utcnow()).execute()
    down = (time.process_time() - started) / 3
    smtp = dataclasses.replace(smtp_ctx.config.outbound.smtp, port=relay.port)
    up = dataclasses.replace(
        smtp_ctx.config, outbound=dataclasses.replace(smtp_ctx.config.outbound, smtp=smtp)
    )
    started = time.process_time()
    assert outbox.deliver(up).sent == 60
    sending = time.process_time() - started
    assert down < sending / 4, (down, sending)
    assert len(relay.received) == 60


def test_permanent_failure_is_marked_failed_and_shown_on_the_ticket(
    smtp_ctx: Context, relay: Relay
) -> None:
    created = ingest(smtp_ctx, compose(), source="smtp")
    relay.handler.rcpt_answers["carla@customer.example"] = (
        "550 5.1.1 <carla@customer.example>: no such user"
    )
    deliver(smtp_ctx)
    (ack,) = items("acknowledgement")
    assert ack.status == "failed" and "550" in ack.last_error
    detail = queries.ticket_detail(smtp_ctx.config, queries.ticket(created.ticket))
    failed = [e for e in detail["events"] if e["kind"] == "notice_failed"]
    assert (
        failed and "550" in failed[0]["detail"] and "c***@customer.example" in failed[0]["detail"]
    )
    assert {i.status for i in items("assignment")} == {"sent"}


def _flush_in_subprocess(config_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "mailgate", "--config", str(config_path), "outbox", "flush"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_a_crash_between_sending_and_marking_never_sends_twice(
    tmp_path: Path, database_url: str, relay: Relay
) -> None:
    data = config_data(
        tmp_path,
        database_url,
        {
            "outbound": {
                "transport": "smtp",
                "batch_size": 1,
                "smtp": {"host": relay.host, "port": relay.port, "security": "none"},
            }
        },
    )
    path = write_config(tmp_path / "mailgate.toml", data)
    from tests.conftest import open_gateway
    from tests.support import load_config

    ctx = open_gateway(load_config(path))
    ingest(ctx, compose(), source="smtp")
    m.OutboxItem.update(status="failed").where(m.OutboxItem.notice != "acknowledgement").execute()
    (ack,) = items("acknowledgement")
    relay.handler.hold = threading.Event()
    sender = _flush_in_subprocess(path)
    assert relay.handler.arrived.wait(20), "the relay never got the mail"
    sender.send_signal(signal.SIGKILL)  # the relay has the mail; the sender never saw its 250
    sender.wait(10)
    relay.handler.hold.set()
    assert m.OutboxItem.get_by_id(ack.id).status == "sending"
    # After the lease, the next run settles the row instead of sending it again.
    m.OutboxItem.update(next_attempt_at=m.utcnow() - dt.timedelta(seconds=1)).execute()
    relay.handler.hold = None
    assert deliver(ctx).sent == 0
    assert m.OutboxItem.get_by_id(ack.id).status == "uncertain"
    assert len(relay.handler.by_message_id(ack.message_id)) == 1
    events = [e.kind for e in m.Event.select()]
    assert "notice_uncertain" in events
    # An admin who knows it was lost sends it again on purpose.
    outbox.retry(ack.id)
    assert deliver(ctx).sent == 1
    assert len(relay.handler.by_message_id(ack.message_id)) == 2
    # Once sent, a second retry would only be a duplicate in the customer's inbox.
    with pytest.raises(UsageError, match="only failed or uncertain"):
        outbox.retry(ack.id)
    m.db.close()


def test_a_crash_after_claiming_loses_no_notice(smtp_ctx: Context, relay: Relay) -> None:
    ingest(smtp_ctx, compose(), source="smtp")
    # A sender claimed the batch and died before handing anything over.
    m.OutboxItem.update(
        status="claimed", next_attempt_at=m.utcnow() - dt.timedelta(seconds=1)
    ).execute()
    assert deliver(smtp_ctx).sent == 3
    assert len(relay.received) == 3


def test_maildir_crash_recovery_checks_the_file(ctx: Context) -> None:
    ingest(ctx, compose(), source="smtp")
    assert outbox.deliver(ctx.config).sent == 3
    # Pretend the sender died after writing the file but before marking it sent.
    m.OutboxItem.update(
        status="sending", next_attempt_at=m.utcnow() - dt.timedelta(seconds=1)
    ).execute()
    assert outbox.deliver(ctx.config).sent == 0
    assert {i.status for i in items()} == {"sent"}
    assert len(os.listdir(Path(ctx.config.outbound.maildir) / "new")) == 3


@pytest.mark.config({"outbound": {"limits": {"per_recipient": ["3/10m"]}}})
def test_circuit_breaker_stops_a_flood_and_records_it(smtp_ctx: Context) -> None:
    for i in range(6):
        ingest(smtp_ctx, compose(subject=f"flood {i}", body=f"mail {i}"), source="smtp")
    acks = items("acknowledgement")
    assert len(acks) == 3
    suppressed = m.Event.select().where(m.Event.kind == "notice_suppressed")
    assert suppressed.count() >= 3
    assert all("circuit breaker" in e.detail for e in suppressed)
    # The agents working these tickets still hear of every one: staff are not loop partners.
    assert len([i for i in items("assignment") if "alice@example.org" in i.recipients]) == 6
    assert not [e for e in suppressed if "example.org" in e.new and "customer" not in e.new]
    # Those notices did not use up Alice's own window: a command she gets wrong is still
    # answered.
    last = [i for i in items("assignment") if i.recipients == ["alice@example.org"]][-1]
    ingest(
        smtp_ctx,
        reply_to(mail_of(smtp_ctx, bytes(last.content)), sender="alice@example.org", body="#asign me"),
        source="smtp",
    )
    assert [i for i in items("command_error") if "alice@example.org" in i.recipients]


def test_two_autoresponders_cannot_ping_pong(smtp_ctx: Context, relay: Relay) -> None:
    created = ingest(smtp_ctx, compose(sender="robot@vendor.example"), source="smtp")
    deliver(smtp_ctx)
    (ack,) = [r for r in relay.received if r.rcpt_tos == ["robot@vendor.example"]]
    # The robot answers our acknowledgement with its own auto-reply, again and again.
    for i in range(5):
        answer = reply_to(
            ack.content,
            sender="robot@vendor.example",
            body=f"Thank you ({i})",
            headers={"Auto-Submitted": "auto-replied"},
        )
        ingest(smtp_ctx, answer, source="smtp")
        deliver(smtp_ctx)
    # A dumb robot without any auto-reply header is a customer reply: agents hear of it,
    # the robot does not.
    dumb = reply_to(ack.content, sender="robot@vendor.example", body="We got your mail.")
    ingest(smtp_ctx, dumb, source="smtp")
    deliver(smtp_ctx)
    to_robot = [r for r in relay.received if "robot@vendor.example" in r.rcpt_tos]
    assert len(to_robot) == 1
    assert queries.ticket(created.ticket).status == "new"


def test_no_acknowledgement_for_noreply_senders_or_where_switched_off(smtp_ctx: Context) -> None:
    ingest(smtp_ctx, compose(sender="no-reply@shop.example"), source="smtp")
    ingest(
        smtp_ctx, compose(sender="carla@customer.example", to="banking@example.org"), source="smtp"
    )
    assert items("acknowledgement") == []


def test_undeliverable_address_is_suppressed_for_every_kind_of_mail(smtp_ctx: Context) -> None:
    original = compose()
    created = ingest(smtp_ctx, original, source="smtp")
    m.Contact.update(
        undeliverable_until=m.utcnow() + dt.timedelta(days=3),
        undeliverable_reason="5.1.1 user unknown",
    ).execute()
    with store.write_transaction():
        changes = Journal()
        ticket = queries.ticket(created.ticket)
        lifecycle.change(ticket, changes, smtp_ctx.config, actor="admin:cli", status="resolved")
        reactions.finish(smtp_ctx, changes)
    assert items("resolution") == []
    detail = queries.ticket_detail(smtp_ctx.config, queries.ticket(created.ticket))
    (held,) = [e for e in detail["events"] if e["kind"] == "notice_suppressed"]
    assert "undeliverable" in held["detail"] and "5.1.1" in held["detail"]


def test_collaborators_get_one_mail_with_the_real_to_and_cc(
    smtp_ctx: Context, relay: Relay
) -> None:
    created = ingest(
        smtp_ctx, compose(cc="Boss <boss@customer.example>, it@customer.example"), source="smtp"
    )
    with store.write_transaction():
        changes = Journal()
        lifecycle.change(
            queries.ticket(created.ticket),
            changes,
            smtp_ctx.config,
            actor="admin:cli",
            status="resolved",
        )
        reactions.finish(smtp_ctx, changes)
    deliver(smtp_ctx)
    (resolution,) = [r for r in relay.received if "Resolved" in str(r.message["Subject"])]
    assert sorted(resolution.rcpt_tos) == [
        "boss@customer.example",
        "carla@customer.example",
        "it@customer.example",
    ]
    assert resolution.message["To"].addresses[0].addr_spec == "carla@customer.example"
    assert [a.addr_spec for a in resolution.message["Cc"].addresses] == [
        "boss@customer.example",
        "it@customer.example",
    ]


def test_customer_text_cannot_inject_headers_or_markup(smtp_ctx: Context, relay: Relay) -> None:
    evil_subject = (
        "=?utf-8?b?"
        + __import__("base64")
        .b64encode(b"Help\r\nBcc: victim@evil.example\r\n\r\n<script>alert(1)</script>")
        .decode()
        + "?="
    )
    raw = compose(subject="placeholder", sender='"Eve <b>" <eve@evil.example>').replace(
        b"Subject: placeholder", b"Subject: " + evil_subject.encode()
    )
    ingest(smtp_ctx, raw, source="smtp")
    deliver(smtp_ctx)
    (ack,) = [r for r in relay.received if r.rcpt_tos == ["eve@evil.example"]]
    assert b"\r\nBcc:" not in ack.content and b"\nBcc:" not in ack.content
    assert "victim@evil.example" not in ack.rcpt_tos
    html = ack.message.get_body(("html",)).get_content()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_references_stay_bounded_on_a_long_thread(smtp_ctx: Context) -> None:
    original = compose()
    created = ingest(smtp_ctx, original, source="smtp")
    previous = original
    for i in range(30):
        previous = reply_to(previous, sender="carla@customer.example", body=f"note {i}")
        ingest(smtp_ctx, previous, source="smtp")
    last = items()[-1]
    refs = email.message_from_bytes(mail_of(smtp_ctx, bytes(last.content)))["References"].split()
    assert 2 <= len(refs) <= 12
    first_in = (
        m.Message.select().where(m.Message.ticket == queries.ticket(created.ticket).id).first()
    )
    assert refs[0] == first_in.message_id


def test_one_overridden_file_changes_one_template(tmp_path: Path, database_url: str) -> None:
    override = tmp_path / "support-templates" / "acknowledgement"
    override.mkdir(parents=True)
    (override / "subject.txt").write_text("{{ ticket.tag }} Wir haben Ihre Anfrage erhalten\n")
    data = config_data(tmp_path, database_url)
    data["mailbox"][0]["templates"] = str(tmp_path / "support-templates")
    from tests.conftest import open_gateway
    from tests.support import load_config

    ctx = open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))
    created = ingest(ctx, compose(), source="smtp")
    (ack,) = items("acknowledgement")
    msg = email.message_from_bytes(mail_of(ctx, bytes(ack.content)), policy=policy.default)
    assert str(msg["Subject"]) == f"[EB#{created.ticket}] Wir haben Ihre Anfrage erhalten"
    assert "thank you for writing" in msg.get_body(("plain",)).get_content()
    m.db.close()


def test_a_template_that_fails_at_send_time_fails_its_row_with_the_reason(
    tmp_path: Path, database_url: str
) -> None:
    # Files on disk after the start-up check (a reload would refuse them): the mail
    # still commits, the acknowledgement fails with one line, the team still hears.
    broken = tmp_path / "support-templates" / "acknowledgement"
    broken.mkdir(parents=True)
    (broken / "body.html").write_text("<p>{{ ticket.nonexistent.field }}</p>\n")
    data = config_data(tmp_path, database_url)
    data["mailbox"][0]["templates"] = str(tmp_path / "support-templates")
    from tests.conftest import open_gateway
    from tests.support import load_config

    ctx = open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))
    created = ingest(ctx, compose(), source="smtp")
    assert created.action == "created"
    report = deliver(ctx)
    (ack,) = items("acknowledgement")
    assert ack.status == "failed"
    assert ack.last_error.startswith("template error: ") and "\n" not in ack.last_error
    assert "acknowledgement/body.html:1" in ack.last_error
    assert report.failed == 1 and report.sent == len(items()) - 1
    detail = queries.ticket_detail(ctx.config, queries.ticket(created.ticket))
    assert [e for e in detail["events"] if e["kind"] == "notice_failed"]
    # Fixed on disk and retried: the same notice goes out, its Message-ID unchanged.
    (broken / "body.html").write_text("<p>{{ ticket.subject }}</p>\n")
    from mailgate.notices import switch_templates

    switch_templates()
    outbox.retry(ack.id)
    assert deliver(ctx).sent == 1
    sent = m.OutboxItem.get_by_id(ack.id)
    assert sent.status == "sent" and sent.message_id == ack.message_id
    assert email.message_from_bytes(bytes(sent.content))["Message-ID"] == ack.message_id
    m.db.close()


def test_a_notice_says_what_was_true_when_it_was_queued(smtp_ctx: Context, relay: Relay) -> None:
    created = ingest(smtp_ctx, compose(subject="Printer on fire"), source="smtp")
    (ack,) = items("acknowledgement")
    # The ticket leaves the team before the outbox runs: the acknowledgement (composed
    # when it is sent) still says what was true when the mail came in.
    with store.write_transaction():
        changes = Journal()
        ticket = queries.ticket(created.ticket)
        lifecycle.change(ticket, changes, smtp_ctx.config, actor="admin:cli", team="")
        reactions.finish(smtp_ctx, changes)
    deliver(smtp_ctx)
    (received,) = [r for r in relay.received if r.rcpt_tos == ["carla@customer.example"]]
    assert received.message["Message-ID"] == ack.message_id
    html = received.message.get_body(("html",)).get_content()
    assert "our Level 1 team" in html and "Printer on fire" in html
    assert m.OutboxItem.get_by_id(ack.id).status == "sent"


def test_templates_check_reports_file_and_line_and_missing_tags(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "acknowledgement").mkdir(parents=True)
    (site / "acknowledgement" / "subject.txt").write_text("Thanks for your mail\n")
    (site / "resolution").mkdir()
    (site / "resolution" / "body.txt").write_text("Hello\n\n{{ ticket.subjekt }}\n{% if %}\n")
    (site / "closed").mkdir()
    (site / "closed" / "body.txt").write_text(
        "Hi {{ requester.name }}\n\nBye {{ no_such_thing }}\n"
    )
    data = config_data(tmp_path, "sqlite:///x.db", {"templates": {"dir": str(site)}})
    from tests.support import load_config

    problems = check_templates(load_config(write_config(tmp_path / "c.toml", data)))
    text = "\n".join(map(str, problems))
    assert f"error: {site}/resolution/body.txt:4:" in text
    assert f"error: {site}/closed/body.txt:3:" in text and "no_such_thing" in text
    assert "warning: acknowledgement/subject.txt" in text and "ticket.tag" in text
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mailgate",
            "--config",
            str(tmp_path / "c.toml"),
            "templates",
            "check",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1 and "Traceback" not in result.stderr


def test_shipped_templates_check_clean(config_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config_path), "templates", "check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout
    assert "0 error(s), 0 warning(s)" in result.stdout


def test_template_preview_prints_the_whole_message(ctx: Context, config_path: Path) -> None:
    created = ingest(ctx, compose(), source="smtp")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mailgate",
            "--config",
            str(config_path),
            "templates",
            "preview",
            "acknowledgement",
            "--ticket",
            str(created.ticket),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "From: Example Bank Helpdesk <support@example.org>" in result.stdout
    assert f"Subject: [EB#{created.ticket}]" in result.stdout
    assert "Content-Type: multipart/alternative" in result.stdout
    assert len(items("acknowledgement")) == 1  # a preview queues nothing


def test_outbox_commands(ctx: Context, config_path: Path) -> None:
    ingest(ctx, compose(), source="smtp")
    run = [sys.executable, "-m", "mailgate", "--config", str(config_path), "outbox"]
    listed = subprocess.run([*run, "list", "--json"], capture_output=True, text=True, timeout=60)
    import json

    rows = json.loads(listed.stdout)
    assert [r["status"] for r in rows] == ["queued"] * 3
    assert listed.stderr == ""  # everything shown: nothing to say
    newest = subprocess.run(
        [*run, "list", "--json", "--limit", "2"], capture_output=True, text=True, timeout=60
    )
    assert [r["id"] for r in json.loads(newest.stdout)] == [r["id"] for r in rows[:2]]
    assert newest.stderr.strip() == (
        "mailgate: showing the newest 2 of 3 items (--limit N shows more, --status S narrows)"
    )
    bad = subprocess.run([*run, "list", "--limit", "0"], capture_output=True, text=True)
    assert bad.returncode == 2 and "'0' is not a whole number of 1 or more" in bad.stderr
    flushed = subprocess.run([*run, "flush"], capture_output=True, text=True, timeout=60)
    assert flushed.returncode == 0 and "sent 3" in flushed.stdout
    sent = subprocess.run(
        [*run, "retry", str(rows[0]["id"])], capture_output=True, text=True, timeout=60
    )
    assert sent.returncode == 1 and "only failed or uncertain" in sent.stderr
    m.OutboxItem.update(status="failed").where(m.OutboxItem.id == rows[0]["id"]).execute()
    again = subprocess.run(
        [*run, "retry", str(rows[0]["id"])], capture_output=True, text=True, timeout=60
    )
    assert again.returncode == 0
    assert m.OutboxItem.get_by_id(rows[0]["id"]).status == "queued"
    missing = subprocess.run([*run, "retry", "999"], capture_output=True, text=True, timeout=60)
    assert missing.returncode == 1 and "no outbox item 999" in missing.stderr


def test_sample_variables_have_the_shape_of_real_ones(ctx: Context) -> None:
    from mailgate import notices as notify

    created = ingest(ctx, compose(), source="smtp")
    ticket = queries.ticket(created.ticket)
    box = ctx.config.mailbox("support")
    intent = notify.Intent("acknowledgement", ticket, [])
    real = notify.variables_for(ctx, intent, box, "support@example.org")
    sample = notify.sample_variables(ctx.config, box, "acknowledgement")
    assert set(real) == set(sample)
    assert set(real["ticket"]) == set(sample["ticket"])


def _secure_relay(tmp_path: Path, *, implicit: bool) -> tuple[Any, Any, int]:
    """An aiosmtpd relay that wants TLS (STARTTLS or implicit) and AUTH, like a real one."""
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    from tests.relay import RelayHandler, free_port
    from tests.support import self_signed_certificate

    cert, key = self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)

    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, data: Any
    ) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            b"gateway",
            b"s3cret",
        )
        return AuthResult(success=ok, handled=False)

    handler = RelayHandler()
    port = free_port()
    kwargs: dict[str, Any] = {
        "authenticator": authenticate,
        "auth_required": True,
        "auth_exclude_mechanism": ["LOGIN"],
    }
    if implicit:
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=port,
            ssl_context=context,
            auth_require_tls=False,
            **kwargs,
        )
    else:
        controller = Controller(
            handler,
            hostname="127.0.0.1",
            port=port,
            tls_context=context,
            require_starttls=True,
            **kwargs,
        )
    controller.start()
    return controller, handler, port


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")  # implicit TLS
@pytest.mark.parametrize("security", ["starttls", "tls"])
def test_relay_with_tls_and_auth_password_from_a_file(
    tmp_path: Path, database_url: str, security: str
) -> None:
    from tests.conftest import open_gateway
    from tests.support import load_config

    controller, handler, port = _secure_relay(tmp_path, implicit=security == "tls")
    try:
        (tmp_path / "relay.pw").write_text("s3cret\n")
        data = config_data(
            tmp_path,
            database_url,
            {
                "outbound": {
                    "transport": "smtp",
                    "smtp": {
                        "host": "127.0.0.1",
                        "port": port,
                        "security": security,
                        "verify": False,
                        "username": "gateway",
                        "password_file": str(tmp_path / "relay.pw"),
                        "timeout": 5,
                    },
                }
            },
        )
        ctx = open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))
        ingest(ctx, compose(), source="smtp")
        report = deliver(ctx)
        assert report.sent == 3 and report.failed == 0, report.errors
        assert len(handler.received) == 3
        # A wrong password is a temporary problem of ours: nothing is lost or failed.
        (tmp_path / "relay.pw").write_text("wrong\n")
        ingest(ctx, compose(sender="other@customer.example"), source="smtp")
        report = deliver(ctx)
        assert report.sent == 0 and report.failed == 0
        assert "refused our login" in report.errors[0]
        assert {i.status for i in m.OutboxItem.select().where(m.OutboxItem.sent_at.is_null())} == {
            "queued"
        }
        m.db.close()
    finally:
        controller.stop()


def test_identical_attachments_are_stored_once(ctx: Context) -> None:
    data = os.urandom(50_000)
    for i in range(2):
        ingest(
            ctx,
            compose(
                subject=f"scan {i}",
                sender=f"c{i}@customer.example",
                attachments=[("scan.pdf", "application/pdf", data)],
            ),
            source="smtp",
        )
    rows = list(m.Attachment.select())
    assert len(rows) == 2 and rows[0].sha256 == rows[1].sha256
    stored = ctx.blobs.path(rows[0].sha256)
    assert stored.read_bytes() == data
    assert len(list(stored.parent.glob(rows[0].sha256 + "*"))) == 1


@pytest.mark.config({"gateway": {"ticket_numbers": "sequential"}})
def test_sequential_ticket_numbers_as_an_option(ctx: Context) -> None:
    numbers = [ingest(ctx, compose(subject=f"s{i}"), source="smtp").ticket for i in range(3)]
    assert numbers == [1000, 1001, 1002]  # gateway.first_ticket_number's default comes first


def test_a_recipient_the_relay_cannot_take_fails_alone_and_visibly(
    smtp_ctx: Context, relay: Relay
) -> None:
    utf8 = (
        "From: Jörg <jörg@kunde.example>\r\nTo: support@example.org\r\nSubject: Grüße\r\n"
        "Message-ID: <utf8@kunde.example>\r\n\r\nHallo\r\n"
    ).encode()
    relay.handler.smtputf8 = False
    created = ingest(smtp_ctx, utf8, source="smtp")
    ingest(smtp_ctx, compose(sender="ok@customer.example", subject="second"), source="smtp")
    report = deliver(smtp_ctx)
    assert report.failed == 1 and report.sent == 5
    (failed,) = [i for i in items() if i.status == "failed"]
    assert "SMTPUTF8" in failed.last_error
    detail = queries.ticket_detail(smtp_ctx.config, queries.ticket(created.ticket))
    assert "notice_failed" in [e["kind"] for e in detail["events"]]
    assert not [i for i in items() if i.status in ("sending", "claimed")]


def test_an_internationalised_address_goes_out_where_the_relay_offers_smtputf8(
    smtp_ctx: Context, relay: Relay
) -> None:
    """Even as the first mail on a connection: the relay's EHLO is read before asking
    whether it offers SMTPUTF8 (it was asked before, and said no)."""
    utf8 = (
        "From: Jörg <jörg@kunde.example>\r\nTo: support@example.org\r\nSubject: Grüße\r\n"
        "Message-ID: <utf8@kunde.example>\r\n\r\nHallo\r\n"
    ).encode()
    ingest(smtp_ctx, utf8, source="smtp")
    report = deliver(smtp_ctx)
    assert report.failed == 0 and report.sent == 3
    assert ["jörg@kunde.example"] in [r.rcpt_tos for r in relay.received]


def resolve_with_collaborators(ctx: Context) -> int:
    """A ticket with two collaborators, resolved: one notice to three recipients."""
    created = ingest(
        ctx, compose(cc="Boss <boss@customer.example>, it@customer.example"), source="smtp"
    )
    deliver(ctx)
    with store.write_transaction():
        changes = Journal()
        lifecycle.change(
            queries.ticket(created.ticket), changes, ctx.config, actor="admin:cli", status="resolved"
        )
        reactions.finish(ctx, changes)
    assert created.ticket is not None
    return created.ticket


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-by-one"])
def test_recipients_the_relay_defers_get_the_mail_later_and_nobody_gets_it_twice(
    smtp_ctx: Context, relay: Relay, pipelining: bool
) -> None:
    relay.handler.pipelining = pipelining
    resolve_with_collaborators(smtp_ctx)
    relay.handler.rcpt_answers["boss@customer.example"] = "450 4.2.1 Mailbox busy, try later"
    report = deliver(smtp_ctx)
    (first,) = [r for r in relay.received if "Resolved" in str(r.message["Subject"])]
    assert sorted(first.rcpt_tos) == ["carla@customer.example", "it@customer.example"]
    (item,) = items("resolution")
    assert item.status == "queued" and item.recipients == ["boss@customer.example"]
    assert "450" in item.last_error and report.retried == 1
    # Boss's mailbox works again; the retry goes to him alone, the same mail.
    del relay.handler.rcpt_answers["boss@customer.example"]
    m.OutboxItem.update(next_attempt_at=m.utcnow()).execute()
    deliver(smtp_ctx)
    resolutions = [r for r in relay.received if "Resolved" in str(r.message["Subject"])]
    assert len(resolutions) == 2
    assert resolutions[1].rcpt_tos == ["boss@customer.example"]
    assert resolutions[1].message["Message-ID"] == first.message["Message-ID"]
    assert items("resolution")[0].status == "sent"


@pytest.mark.parametrize("pipelining", [True, False], ids=["pipelining", "one-by-one"])
def test_a_mixed_answer_fails_the_5xx_recipient_visibly_and_retries_the_4xx_one(
    smtp_ctx: Context, relay: Relay, pipelining: bool
) -> None:
    relay.handler.pipelining = pipelining  # the same answers whether the relay offers it
    number = resolve_with_collaborators(smtp_ctx)
    relay.handler.rcpt_answers["boss@customer.example"] = "450 4.2.1 Mailbox busy, try later"
    relay.handler.rcpt_answers["it@customer.example"] = "550 5.1.1 No such user"
    deliver(smtp_ctx)
    (item,) = items("resolution")
    assert item.status == "queued" and item.recipients == ["boss@customer.example"]
    detail = queries.ticket_detail(smtp_ctx.config, queries.ticket(number))
    failed = [e for e in detail["events"] if e["kind"] == "notice_failed"]
    assert len(failed) == 1 and "550" in failed[0]["detail"] and "450" not in failed[0]["detail"]
    # Nobody accepted it and the relay defers boss again: still queued for boss alone.
    relay.handler.rcpt_answers["carla@customer.example"] = "550 5.1.1 gone"
    m.OutboxItem.update(next_attempt_at=m.utcnow()).execute()
    deliver(smtp_ctx)
    assert items("resolution")[0].recipients == ["boss@customer.example"]
    assert items("resolution")[0].status == "queued"


def test_a_subject_of_one_long_word_survives_in_every_notice_within_998_octet_lines(
    smtp_ctx: Context, relay: Relay
) -> None:
    word = "Outage-" + "x" * 490 + "-" + "y" * 500  # about 1,000 ASCII characters, no space
    name = "Carla" * 150  # a display name of one long word, too
    raw = compose(sender=f"{name} <carla@customer.example>", subject=word, cc="it@customer.example")
    created = ingest(smtp_ctx, raw, source="smtp")
    assert deliver(smtp_ctx).sent >= 3
    assert relay.received
    for received in relay.received:
        head = received.content.split(b"\r\n\r\n", 1)[0]
        longest = max(len(line) for line in head.split(b"\r\n"))
        assert longest <= 998, f"a header line of {longest} octets"
        assert word in str(received.message["Subject"])  # decoded, it is whole
    (ack,) = [r for r in relay.received if "carla@customer.example" in r.rcpt_tos]
    assert str(ack.message["Subject"]) == f"[EB#{created.ticket}] {word}"
