"""The ingest core: one raw mail in, one ticket or threaded reply out, exactly once.

Every test here runs against a SQLite file and against the real PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
from pathlib import Path

import pytest

from mailgate import lifecycle, reactions, store
from mailgate.context import Context
from mailgate.errors import ConfigError, TemporaryFailure
from mailgate.events import Journal
from mailgate.intake import Envelope, explain, ingest, retry
from mailgate.notices import mail_of
from mailgate.store import models as m
from mailgate.store import views as queries
from tests.support import compose, config_data, load_config, reply_to, write_config


def show(ctx: Context, number: int | None) -> dict:
    assert number is not None
    return queries.ticket_detail(ctx.config, queries.ticket(number))


def inbound(detail: dict) -> list[dict]:
    return [x for x in detail["messages"] if x["direction"] == "in"]


def outbound(ctx: Context, number: int, notice: str) -> list[m.OutboxItem]:
    """The ticket's outbox rows of ``notice``, their content the mail as it will be sent."""
    ticket = queries.ticket(number)
    found = list(
        m.OutboxItem.select().where(
            (m.OutboxItem.ticket == ticket.id) & (m.OutboxItem.notice == notice)
        )
    )
    for item in found:
        item.content = mail_of(ctx, bytes(item.content))
    return found


def set_status_at(number: int, status: str, days_ago: float) -> None:
    when = m.utcnow() - dt.timedelta(days=days_ago)
    fields = {"status": status, "resolved_at": when}
    if status == "closed":
        fields["closed_at"] = when
    m.Ticket.update(**fields).where(m.Ticket.number == number).execute()


def test_new_mail_creates_a_ticket_in_the_mailbox_team(ctx: Context) -> None:
    raw = compose(
        subject="Fwd: RE: The mobile online banking is down",
        cc="Boss <boss@customer.example>, support@example.org",
    )
    outcome = ingest(ctx, raw, source="cli")
    assert outcome.action == "created"
    detail = show(ctx, outcome.ticket)
    assert detail["subject"] == "The mobile online banking is down"
    assert detail["status"] == "new"
    assert detail["priority"] == "normal"
    assert detail["team"] == "level1"
    assert detail["requester"] == "carla@customer.example"
    assert detail["collaborators"] == ["boss@customer.example"]
    assert detail["tag"] == f"[EB#{outcome.ticket}]" == outcome.tag
    (message,) = [x for x in detail["messages"] if x["direction"] == "in"]
    assert message["kind"] == "customer"
    assert "entire mobile online banking system is down" in message["text"]
    assert [e["kind"] for e in detail["events"]][:2] == ["created", "collaborator_added"]
    assert 100000 <= outcome.ticket <= 999999


def test_percent_signs_in_a_mail_are_stored_as_written(ctx: Context) -> None:
    # On PostgreSQL the message, its attachments and events are sent with the next
    # statement as one text (sql.later): a % in it must not read as a parameter.
    odd = "50% off %s %(name)s %% 100%"
    original = compose(
        subject=f"Refund {odd}",
        body=f"I was promised {odd}.\n",
        attachments=[(f"note {odd}.txt", "text/plain", b"%s %d 100%\n")],
    )
    outcome = ingest(ctx, original, source="cli")
    detail = show(ctx, outcome.ticket)
    assert detail["subject"] == f"Refund {odd}"
    (message,) = inbound(detail)
    assert message["text"].strip() == f"I was promised {odd}."
    (attachment,) = message["attachments"]
    assert attachment["original_filename"] == f"note {odd}.txt"
    answer = reply_to(original, sender="carla@customer.example", body=f"And {odd} again\n")
    reply = ingest(ctx, answer, source="cli")
    assert reply.action == "appended" and reply.ticket == outcome.ticket
    assert inbound(show(ctx, outcome.ticket))[-1]["text"].startswith(f"And {odd} again")


def test_the_mailbox_decides_team_and_priority(ctx: Context) -> None:
    outcome = ingest(ctx, compose(to="banking@example.org"), source="cli")
    detail = show(ctx, outcome.ticket)
    assert (detail["team"], detail["priority"], detail["mailbox"]) == (
        "online-banking",
        "high",
        "banking",
    )


def test_same_mail_delivered_twice_is_recorded_once(ctx: Context) -> None:
    raw = compose()
    first = ingest(ctx, raw, source="smtp")
    second = ingest(ctx, raw, source="imap")
    assert second.action == "duplicate"
    assert second.ticket == first.ticket
    assert m.Ticket.select().count() == 1
    assert m.Message.select().where(m.Message.direction == "in").count() == 1
    assert m.Receipt.select().count() == 1


def test_one_mail_to_two_of_our_mailboxes_becomes_one_ticket(ctx: Context) -> None:
    raw = compose(to="support@example.org", cc="banking@example.org")
    copy_for_banking = b"Delivered-To: banking@example.org\r\nReceived: from mx2\r\n" + raw
    first = ingest(ctx, b"Delivered-To: support@example.org\r\n" + raw, source="smtp")
    second = ingest(ctx, copy_for_banking, source="smtp")
    assert (first.action, second.action) == ("created", "duplicate")
    assert m.Ticket.select().count() == 1


def test_mail_without_message_id_is_deduplicated_by_its_bytes(ctx: Context) -> None:
    raw = b"From: a@customer.example\r\nTo: support@example.org\r\nSubject: no id\r\n\r\nhelp\r\n"
    first = ingest(ctx, raw, source="pipe")
    again = ingest(ctx, raw, source="pipe")
    other = ingest(ctx, raw.replace(b"help", b"help!"), source="pipe")
    assert (first.action, again.action, other.action) == ("created", "duplicate", "created")
    assert first.message_id.endswith("@sha256.mailgate.invalid>")


def test_a_reused_message_id_from_another_sender_is_not_a_duplicate(ctx: Context) -> None:
    first = ingest(ctx, compose(message_id="<1@localhost>"), source="smtp")
    second = ingest(
        ctx,
        compose(message_id="<1@localhost>", sender="other@elsewhere.example", subject="different"),
        source="smtp",
    )
    assert first.action == second.action == "created"
    assert first.ticket != second.ticket


def test_reply_threads_by_in_reply_to_and_stores_visible_and_full_text(ctx: Context) -> None:
    original = compose()
    created = ingest(ctx, original, source="smtp")
    reply = reply_to(
        original,
        sender="Carla Customer <carla@customer.example>",
        body="It works on the website but not in the app.",
        subject="Something else",
    )
    outcome = ingest(ctx, reply, source="smtp")
    assert outcome.action == "appended"
    assert outcome.ticket == created.ticket
    last = inbound(show(ctx, outcome.ticket))[-1]
    assert last["text"] == "It works on the website but not in the app."
    stored = m.Message.get(m.Message.message_id == last["message_id"])
    assert "> the entire mobile online banking system is down." in stored.full_text
    assert any("In-Reply-To" in line for line in last["trace"])


def test_reply_to_our_acknowledgement_threads_by_references(ctx: Context) -> None:
    created = ingest(ctx, compose(), source="smtp")
    (ack,) = outbound(ctx, created.ticket, "acknowledgement")
    # Clients that drop the Reply-To still carry the References of the notice.
    reply = reply_to(
        ack.content,
        sender="carla@customer.example",
        body="Any news?",
        to="support@example.org",
        subject="Re: something unrelated",
    )
    outcome = ingest(ctx, reply, source="smtp")
    assert (outcome.action, outcome.ticket) == ("appended", created.ticket)
    assert any("our notice" in line for line in outcome.trace)


def test_subject_tag_finds_the_ticket_when_headers_are_gone(ctx: Context) -> None:
    created = ingest(ctx, compose(), source="smtp")
    for prefix in ("AW: WG:", "回复：", "SV:", "RIF:"):
        raw = compose(
            subject=f"{prefix} [EB#{created.ticket}] The mobile online banking is down",
            body="Still down.",
        )
        assert ingest(ctx, raw, source="smtp").ticket == created.ticket


def test_a_tag_of_another_system_or_an_unknown_number_opens_a_new_ticket(ctx: Context) -> None:
    created = ingest(ctx, compose(), source="smtp")
    foreign = ingest(ctx, compose(subject=f"Re: [XY#{created.ticket}] down"), source="smtp")
    unknown = ingest(ctx, compose(subject="Re: [EB#1] down"), source="smtp")
    assert foreign.action == unknown.action == "created"
    assert len({created.ticket, foreign.ticket, unknown.ticket}) == 3


def test_plus_address_leads_to_the_ticket(ctx: Context) -> None:
    created = ingest(ctx, compose(), source="smtp")
    raw = compose(to=f"support+{created.ticket}@example.org", subject="no tag here", body="more")
    assert ingest(ctx, raw, source="smtp").ticket == created.ticket


def test_reply_to_resolved_ticket_within_window_reopens_it(ctx: Context) -> None:
    original = compose()
    created = ingest(ctx, original, source="smtp")
    set_status_at(created.ticket, "resolved", days_ago=2)
    outcome = ingest(
        ctx,
        reply_to(original, sender="carla@customer.example", body="Broken again."),
        source="smtp",
    )
    assert outcome.action == "reopened"
    detail = show(ctx, created.ticket)
    assert detail["status"] == "open"
    reopened = [e for e in detail["events"] if e["kind"] == "reopened"]
    assert reopened and reopened[0]["old"] == "resolved"
    assert any("resolved 2 days ago" in line and "reopened" in line for line in outcome.trace)


def test_reply_to_ticket_closed_beyond_window_opens_a_linked_ticket(ctx: Context) -> None:
    original = compose()
    created = ingest(ctx, original, source="smtp")
    set_status_at(created.ticket, "closed", days_ago=45)
    outcome = ingest(
        ctx, reply_to(original, sender="carla@customer.example", body="Again!"), source="smtp"
    )
    assert outcome.action == "created"
    assert outcome.ticket != created.ticket
    new, old = show(ctx, outcome.ticket), show(ctx, created.ticket)
    assert {"kind": "follow_up_of", "ticket": created.ticket} in new["links"]
    assert {"kind": "followed_by", "ticket": outcome.ticket} in old["links"]
    assert old["status"] == "closed"
    assert inbound(new)[0]["text"] == "Again!"
    # Same matter, same subject and team; the customer learns it continues the old one.
    assert (new["subject"], new["team"]) == (old["subject"], old["team"])
    (ack,) = outbound(ctx, outcome.ticket, "acknowledgement")
    mail = email.message_from_bytes(bytes(ack.content), policy=email.policy.default)
    body = mail.get_body(("plain",)).get_content()
    assert f"earlier request [EB#{created.ticket}]" in body


def test_auto_reply_never_reopens_and_is_never_acknowledged(ctx: Context) -> None:
    original = compose()
    created = ingest(ctx, original, source="smtp")
    set_status_at(created.ticket, "resolved", days_ago=1)
    ooo = reply_to(
        original,
        sender="carla@customer.example",
        body="I am out of office.",
        subject="Automatic reply: The mobile online banking is down",
        headers={"Auto-Submitted": "auto-replied"},
    )
    outcome = ingest(ctx, ooo, source="smtp")
    assert outcome.action == "appended"
    assert show(ctx, created.ticket)["status"] == "resolved"
    assert inbound(show(ctx, created.ticket))[-1]["kind"] == "auto_reply"
    stray = ingest(
        ctx,
        compose(subject="Out of Office: hello", headers={"Auto-Submitted": "auto-replied"}),
        source="smtp",
    )
    assert stray.action == "ignored" and stray.ticket is None


def test_mail_from_our_own_address_or_with_our_loop_header_is_ignored(ctx: Context) -> None:
    own = ingest(ctx, compose(sender="support@example.org"), source="smtp")
    looped = ingest(
        ctx, compose(headers={"X-Mailgate-Loop": "helpdesk.example.org"}), source="smtp"
    )
    assert own.action == looped.action == "ignored"
    assert m.Ticket.select().count() == 0
    assert m.Receipt.select().where(m.Receipt.action == "ignored").count() == 2


def dsn_for(notice: bytes, recipient: str, status: str = "5.1.1") -> bytes:
    original = email.message_from_bytes(notice)
    return (
        "From: MAILER-DAEMON@mx.customer.example (Mail Delivery System)\r\n"
        "To: support@example.org\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        "Message-ID: <dsn-" + status + "@mx.customer.example>\r\n"
        "Auto-Submitted: auto-replied\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="r"\r\n\r\n'
        "--r\r\nContent-Type: text/plain\r\n\r\nI'm sorry to have to inform you that your message"
        " could not be delivered.\r\n"
        "--r\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.customer.example\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\n"
        f"Action: {'failed' if status.startswith('5') else 'delayed'}\r\n"
        f"Status: {status}\r\n"
        f"Diagnostic-Code: smtp; {'550 5.1.1 User unknown' if status.startswith('5') else '451 try later'}\r\n\r\n"
        "--r\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: {original['From']}\r\nTo: {original['To']}\r\n"
        f"Subject: {original['Subject']}\r\nMessage-ID: {original['Message-ID']}\r\n\r\n"
        "--r--\r\n"
    ).encode()


def test_bounce_attaches_to_the_ticket_and_marks_the_address_undeliverable(ctx: Context) -> None:
    created = ingest(ctx, compose(), source="smtp")
    (ack,) = outbound(ctx, created.ticket, "acknowledgement")
    outcome = ingest(ctx, dsn_for(ack.content, "carla@customer.example"), source="smtp")
    assert outcome.action == "bounce"
    assert outcome.ticket == created.ticket
    assert m.Ticket.select().count() == 1
    detail = show(ctx, created.ticket)
    failed = [e for e in detail["events"] if e["kind"] == "delivery_failed"]
    assert (
        failed and failed[0]["new"] == "carla@customer.example" and "5.1.1" in failed[0]["detail"]
    )
    contact = m.Contact.get(m.Contact.email == "carla@customer.example")
    assert contact.undeliverable_until is not None and contact.undeliverable_until > m.utcnow()


def test_a_delay_notice_is_recorded_without_suppression(ctx: Context) -> None:
    created = ingest(ctx, compose(), source="smtp")
    (ack,) = outbound(ctx, created.ticket, "acknowledgement")
    outcome = ingest(ctx, dsn_for(ack.content, "carla@customer.example", "4.4.1"), source="smtp")
    assert outcome.action == "bounce"
    kinds = [e["kind"] for e in show(ctx, created.ticket)["events"]]
    assert "delivery_delayed" in kinds
    assert m.Contact.get(m.Contact.email == "carla@customer.example").undeliverable_until is None


def test_a_bounce_about_no_mail_of_ours_is_ignored(ctx: Context) -> None:
    unknown = compose(message_id="<never-sent@helpdesk.example.org>")
    outcome = ingest(ctx, dsn_for(unknown, "x@customer.example"), source="smtp")
    assert outcome.action == "ignored"
    assert m.Ticket.select().count() == 0


@pytest.mark.config({"lifecycle": {"unknown_sender": "append"}})
def test_a_stranger_on_a_ticket_is_appended_as_external_without_reopening(ctx: Context) -> None:
    created = ingest(ctx, compose(), source="smtp")
    set_status_at(created.ticket, "resolved", days_ago=1)
    raw = compose(sender="stranger@else.example", subject=f"Re: [EB#{created.ticket}] x", body="hi")
    outcome = ingest(ctx, raw, source="smtp")
    assert outcome.action == "appended"
    detail = show(ctx, created.ticket)
    assert detail["status"] == "resolved"
    assert inbound(detail)[-1]["kind"] == "external"


@pytest.mark.config({"lifecycle": {"unknown_sender": "new_ticket"}})
def test_a_stranger_on_a_ticket_gets_a_new_linked_ticket_by_policy(ctx: Context) -> None:
    created = ingest(ctx, compose(), source="smtp")
    raw = compose(sender="stranger@else.example", subject=f"Re: [EB#{created.ticket}] x", body="hi")
    outcome = ingest(ctx, raw, source="smtp")
    assert outcome.action == "created" and outcome.ticket != created.ticket
    assert {"kind": "follow_up_of", "ticket": created.ticket} in show(ctx, outcome.ticket)["links"]


def test_a_stranger_naming_a_closed_ticket_learns_nothing_about_it(ctx: Context) -> None:
    created = ingest(ctx, compose(subject="Salary of Carla"), source="smtp")
    set_status_at(created.ticket, "closed", days_ago=45)
    raw = compose(sender="stranger@else.example", subject=f"[EB#{created.ticket}] hello", body="hi")
    outcome = ingest(ctx, raw, source="smtp")
    assert outcome.action == "created" and outcome.ticket != created.ticket
    # Linked for the agents, but the new ticket has the stranger's own subject and the
    # acknowledgement names neither the old subject nor the old ticket.
    assert show(ctx, outcome.ticket)["subject"] == "hello"
    (ack,) = outbound(ctx, outcome.ticket, "acknowledgement")
    text = email.message_from_bytes(bytes(ack.content), policy=email.policy.default)
    body = text.get_body(("plain",)).get_content()
    assert "Salary" not in body and "Salary" not in str(text["Subject"])
    assert f"EB#{created.ticket}" not in body.replace(f"EB#{outcome.ticket}", "")


def test_a_collaborator_reply_reopens_like_the_requester(ctx: Context) -> None:
    original = compose(cc="boss@customer.example")
    created = ingest(ctx, original, source="smtp")
    set_status_at(created.ticket, "resolved", days_ago=3)
    outcome = ingest(
        ctx, reply_to(original, sender="boss@customer.example", body="Still broken."), source="smtp"
    )
    assert outcome.action == "reopened"


def test_a_reply_to_a_merged_ticket_lands_on_the_target(ctx: Context) -> None:
    first_raw = compose()
    first = ingest(ctx, first_raw, source="smtp")
    second = ingest(ctx, compose(subject="Banking app down too"), source="smtp")
    with store.write_transaction():
        changes = Journal()
        lifecycle.merge(
            queries.ticket(first.ticket), queries.ticket(second.ticket), changes, actor="admin:cli"
        )
        reactions.finish(ctx, changes)
    outcome = ingest(
        ctx, reply_to(first_raw, sender="carla@customer.example", body="more info"), source="smtp"
    )
    assert outcome.ticket == second.ticket
    by_tag = ingest(
        ctx, compose(subject=f"Re: [EB#{first.ticket}] x", body="and more"), source="smtp"
    )
    assert by_tag.ticket == second.ticket
    assert any(f"#{first.ticket} was merged into #{second.ticket}" in line for line in by_tag.trace)


def test_a_forged_agent_from_header_is_an_unverified_external_message(ctx: Context) -> None:
    original = compose()
    created = ingest(ctx, original, source="smtp")
    raw = compose(
        sender="Alice Smith <alice@example.org>",
        subject=f"Re: [EB#{created.ticket}] x",
        body="#status resolved\nWe are looking into it.",
    )
    outcome = ingest(ctx, raw, source="smtp")
    assert outcome.action == "appended"
    detail = show(ctx, created.ticket)
    last = inbound(detail)[-1]
    assert (last["kind"], last["verified"]) == ("external", False)
    assert detail["status"] == "new"  # no command ran
    assert "unverified_agent_mail" in [e["kind"] for e in detail["events"]]


def test_customer_reply_moves_a_pending_ticket_back_to_open(ctx: Context) -> None:
    original = compose()
    created = ingest(ctx, original, source="smtp")
    m.Ticket.update(status="pending").where(m.Ticket.number == created.ticket).execute()
    ingest(
        ctx,
        reply_to(original, sender="carla@customer.example", body="Here is the info."),
        source="smtp",
    )
    assert show(ctx, created.ticket)["status"] == "open"


def test_garbage_is_quarantined_raw_and_can_be_retried(ctx: Context) -> None:
    garbage = b"\x00\x01\x02 this is not a mail at all \xff\xfe" * 20
    outcome = ingest(ctx, garbage, source="pipe")
    assert outcome.action == "quarantined"
    assert "no mail headers" in outcome.reason
    receipt = m.Receipt.get(m.Receipt.message_id == outcome.message_id)
    assert receipt.status == "quarantined"
    assert ctx.blobs.get(receipt.sha256) == garbage
    assert ingest(ctx, garbage, source="pipe").action == "duplicate"
    assert retry(ctx, receipt.id).action == "quarantined"


def test_mail_without_any_sender_is_quarantined_not_lost(ctx: Context) -> None:
    raw = b"To: support@example.org\r\nSubject: who am I\r\nMessage-ID: <x@y>\r\n\r\nbody\r\n"
    outcome = ingest(ctx, raw, source="smtp")
    assert outcome.action == "quarantined"
    assert "no sender" in outcome.reason
    via_envelope = ingest(
        ctx,
        raw.replace(b"<x@y>", b"<x2@y>"),
        source="smtp",
        envelope=Envelope(mail_from="real@customer.example"),
    )
    assert via_envelope.action == "created"


def test_a_failure_mid_transaction_writes_nothing_and_the_mail_is_kept(ctx: Context) -> None:
    # Break the last table the transaction writes to: the ticket, message and events
    # written before it must roll back with it.
    m.db.drop_tables([m.AutoMailLog])
    raw = compose()
    try:
        outcome = ingest(ctx, raw, source="smtp")
    except TemporaryFailure:
        outcome = None
    assert outcome is None or outcome.action == "quarantined"
    assert m.Ticket.select().count() == 0
    assert m.Message.select().count() == 0
    assert m.Event.select().count() == 0
    assert m.OutboxItem.select().count() == 0
    receipt = m.Receipt.get()
    assert ctx.blobs.get(receipt.sha256) == raw
    # After the fix the same mail becomes exactly one ticket.
    m.db.create_tables([m.AutoMailLog])
    if receipt.status == "quarantined":
        assert retry(ctx, receipt.id).action == "created"
    else:
        assert ingest(ctx, raw, source="smtp").action == "created"
    assert ingest(ctx, raw, source="smtp").action == "duplicate"
    assert m.Ticket.select().count() == 1


def test_explain_shows_the_decision_and_writes_nothing(ctx: Context) -> None:
    original = compose(cc="boss@customer.example")
    created = ingest(ctx, original, source="smtp")
    before = (m.Receipt.select().count(), m.Message.select().count(), m.Event.select().count())
    reply = reply_to(original, sender="Carla <carla@customer.example>", body="Thanks!")
    result = explain(ctx, reply)
    assert result["action"] == "appended"
    assert result["from"] == "carla@customer.example"
    assert result["class"] == "person"
    assert result["text"] == "Thanks!"
    assert result["thread"]["ticket"] == created.ticket
    assert result["thread"]["sender_role"] == "requester"
    assert any("In-Reply-To" in line for line in result["trace"])
    assert (
        m.Receipt.select().count(),
        m.Message.select().count(),
        m.Event.select().count(),
    ) == before
    assert explain(ctx, original)["action"] == "duplicate"


def test_raw_bytes_or_nul_in_the_message_id_never_make_a_mail_unstorable(ctx: Context) -> None:
    for i, message_id in enumerate((b"<\xe9t\xe9@b.example>", b"<nul\x00id@b.example>")):
        raw = (
            b"From: c@customer.example\r\nTo: support@example.org\r\nSubject: odd "
            + bytes([48 + i])
            + b"\r\nMessage-ID: "
            + message_id
            + b"\r\n"
            b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\n"
            b"Content-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/x\x00y\r\n"
            b"Content-Disposition: attachment; filename=a\x00b.bin\r\n\r\nxyz\r\n--b--\r\n"
        )
        first = ingest(ctx, raw, source="pipe")
        assert first.action == "created", first.reason
        assert ingest(ctx, raw, source="pipe").action == "duplicate"
        assert first.message_id.endswith("@sha256.mailgate.invalid>")


def test_a_reused_message_id_with_other_text_from_the_same_sender_is_a_new_mail(
    ctx: Context,
) -> None:
    alarm = compose(
        sender="scanner@customer.example",
        message_id="<1@localhost>",
        subject="Disk full on db1",
        body="db1: 99 % used",
    )
    other = compose(
        sender="scanner@customer.example",
        message_id="<1@localhost>",
        subject="Disk full on db2",
        body="db2: 98 % used",
    )
    assert ingest(ctx, alarm, source="smtp").action == "created"
    assert ingest(ctx, other, source="smtp").action == "created"
    assert ingest(ctx, b"Received: from mx2\r\n" + alarm, source="smtp").action == "duplicate"


def test_a_forged_bounce_cannot_silence_agents_or_strangers(ctx: Context) -> None:
    created = ingest(ctx, compose(), source="smtp")
    (ack,) = outbound(ctx, created.ticket, "acknowledgement")
    for victim in ("alice@example.org", "someone@else.example"):
        ingest(ctx, dsn_for(ack.content, victim), source="smtp")
        contact = m.Contact.get_or_none(m.Contact.email == victim)
        assert contact is None or contact.undeliverable_until is None
    ignored = [
        e for e in show(ctx, created.ticket)["events"] if e["kind"] == "delivery_report_ignored"
    ]
    assert [e["new"] for e in ignored] == ["alice@example.org", "someone@else.example"]


def test_an_interrupted_mail_is_finished_with_its_envelope(ctx: Context) -> None:
    from mailgate import intake as front_door
    from mailgate.intake import receipts

    created = ingest(ctx, compose(), source="smtp")
    raw = compose(
        sender="jane.doe@example.org",
        subject=f"Re: [EB#{created.ticket}] x",
        body="#priority high\nOn it.",
    )
    sha256 = __import__("hashlib").sha256(raw).hexdigest()
    ctx.blobs.put(raw, sha256)
    # The process died right after the receipt was committed (SMTP AUTH as jane).
    envelope = Envelope(
        mail_from="jane.doe@example.org",
        rcpt_tos=("support@example.org",),
        authenticated_as="jane",
        via_mta=False,
    )
    message_id, sender = receipts.peek(raw, sha256)
    receipts.receive(
        message_id, sha256, sender, len(raw), "smtp", "", envelope, receipts.fingerprint(raw)
    )
    m.Receipt.update(lease_until=m.utcnow() - dt.timedelta(seconds=1)).execute()
    (outcome,) = front_door.recover(ctx)
    assert outcome.action == "appended"
    assert show(ctx, created.ticket)["priority"] == "high"


def test_a_mail_that_keeps_killing_the_process_is_quarantined(ctx: Context) -> None:
    from mailgate import intake as front_door
    from mailgate.intake import receipts
    from mailgate.store import receipts as receipt_rows

    raw = compose()
    sha256 = __import__("hashlib").sha256(raw).hexdigest()
    ctx.blobs.put(raw, sha256)
    message_id, sender = receipts.peek(raw, sha256)
    receipts.receive(
        message_id, sha256, sender, len(raw), "smtp", "", Envelope(), receipts.fingerprint(raw)
    )
    # The first delivery and each take-over after it died with the mail: all count.
    for _ in range(receipts.MAX_ATTEMPTS - 1):
        m.Receipt.update(lease_until=m.utcnow() - dt.timedelta(seconds=1)).execute()
        with store.write_transaction():
            assert receipts.claim(receipt_rows.by_id(m.Receipt.get().id), m.utcnow())
    m.Receipt.update(lease_until=m.utcnow() - dt.timedelta(seconds=1)).execute()
    outcomes = front_door.recover(ctx)
    assert [o.action for o in outcomes] == ["quarantined"]
    assert m.Receipt.get().status == "quarantined"
    assert m.Ticket.select().count() == 0


def test_a_forged_agent_mail_dressed_as_list_mail_is_still_unverified(ctx: Context) -> None:
    created = ingest(ctx, compose(), source="smtp")
    raw = compose(
        sender="bob@example.org",
        subject=f"Re: [EB#{created.ticket}] x",
        body="#resolve\nSend your PIN.",
        headers={"Precedence": "bulk", "List-Id": "<x.y>"},
    )
    ingest(ctx, raw, source="smtp")
    detail = show(ctx, created.ticket)
    assert inbound(detail)[-1]["kind"] == "external"
    assert detail["status"] == "new"
    assert "unverified_agent_mail" in [e["kind"] for e in detail["events"]]


@pytest.mark.config(
    {
        "team": [
            {"key": "level1", "name": "Level 1", "address": "level1@example.org"},
            {"key": "online-banking", "name": "Online Banking"},
            {"key": "sysadmins", "name": "System Administrators"},
        ]
    }
)
def test_a_team_without_members_hears_at_its_address(ctx: Context) -> None:
    created = ingest(ctx, compose(), source="smtp")
    (notice,) = outbound(ctx, created.ticket, "assignment")
    assert notice.recipients == ["level1@example.org"]


@pytest.mark.config({"gateway": {"max_mime_parts": 5}})
def test_parts_beyond_max_mime_parts_are_not_read_but_the_ticket_is_made(ctx: Context) -> None:
    files = [(f"scan{i}.pdf", "application/pdf", f"scan {i}".encode()) for i in range(12)]
    raw = compose(subject="Twelve scans", attachments=files)
    created = ingest(ctx, raw, source="smtp")
    assert created.action == "created"
    stored = m.Attachment.select().count()
    assert 0 < stored < 5  # the body and the first attachments, not the twelve
    assert queries.ticket(created.ticket).subject == "Twelve scans"
    assert explain(ctx, raw)["action"] == "duplicate"


def test_max_mime_parts_must_be_positive(tmp_path: Path) -> None:
    data = config_data(tmp_path, "sqlite:///x.db", {"gateway": {"max_mime_parts": 0}})
    with pytest.raises(ConfigError, match=r"gateway\.max_mime_parts: must be at least 1"):
        load_config(write_config(tmp_path / "c.toml", data))


def list_alert(about: str, subject: str = "Your message awaits moderator approval") -> bytes:
    return (
        "From: helpdesk-list-bounces@customer.example\r\nTo: support@example.org\r\n"
        f"Subject: {subject}\r\nList-Id: <helpdesk.customer.example>\r\n"
        f"Message-ID: <alert-{abs(hash(about + subject))}@customer.example>\r\n"
        f"In-Reply-To: {about}\r\n\r\n"
        "Your mail to the helpdesk list is being held until the list moderator can review it.\r\n"
    ).encode()


def test_a_list_alert_about_our_notice_is_recorded_on_its_ticket_and_reopens_nothing(
    ctx: Context,
) -> None:
    created = ingest(ctx, compose(cc="helpdesk@customer.example"), source="smtp")
    (ack,) = outbound(ctx, created.ticket, "acknowledgement")
    set_status_at(created.ticket, "resolved", days_ago=1)
    notices_before = m.OutboxItem.select().count()
    outcome = ingest(ctx, list_alert(ack.message_id), source="smtp")
    assert outcome.action == "list_alert" and outcome.ticket == created.ticket
    assert m.Ticket.select().count() == 1
    detail = show(ctx, created.ticket)
    assert detail["status"] == "resolved"
    (alert,) = [e for e in detail["events"] if e["kind"] == "list_alert"]
    assert "moderator approval" in alert["detail"]
    assert m.OutboxItem.select().count() == notices_before  # nobody is told, nobody answered
    contact = m.Contact.get_or_none(m.Contact.email == "helpdesk@customer.example")
    assert contact is None or contact.undeliverable_until is None


def test_a_list_refusing_our_notice_is_named_on_the_ticket_and_never_suppressed(
    ctx: Context,
) -> None:
    created = ingest(ctx, compose(cc="helpdesk@customer.example"), source="smtp")
    (ack,) = outbound(ctx, created.ticket, "acknowledgement")
    alert = (
        "From: helpdesk-admin@customer.example\r\nTo: support@example.org\r\n"
        "Subject: You support@example.org are not member (helpdesk ML)\r\n"
        "X-MLServer: fml [fml 4.0.3 release]\r\nMessage-ID: <nm-1.FML@customer.example>\r\n"
        f"In-Reply-To: {ack.message_id}\r\n\r\n"
        "You are not a member of this mailing list <helpdesk@customer.example>.\r\n"
    ).encode()
    assert explain(ctx, alert)["failed_recipients"][0]["address"] == "helpdesk@customer.example"
    outcome = ingest(ctx, alert, source="smtp")
    assert outcome.action == "list_alert" and outcome.ticket == created.ticket
    (event,) = [e for e in show(ctx, created.ticket)["events"] if e["kind"] == "list_alert"]
    assert "for helpdesk@customer.example" in event["detail"]
    # A list's refusal says nothing about the address: the next notice still goes there.
    contact = m.Contact.get_or_none(m.Contact.email == "helpdesk@customer.example")
    assert contact is None or contact.undeliverable_until is None


def test_a_customer_forwarding_a_bounce_opens_a_ticket_and_suppresses_nobody(
    ctx: Context,
) -> None:
    raw = (
        b"From: Carla <carla@customer.example>\r\nTo: support@example.org\r\n"
        b"Subject: Fwd: Undelivered Mail Returned to Sender\r\n"
        b"Message-ID: <fwd-bounce-1@customer.example>\r\n\r\n"
        b"My mail to my father bounced, can you reach him?\r\n\r\n"
        b"---------- Forwarded message ---------\r\n"
        b"From: Mail Delivery System <MAILER-DAEMON@mx.customer.example>\r\n"
        b"Subject: Undelivered Mail Returned to Sender\r\n\r\n"
        b"<dad@family.example>: host mx.family.example said: 550 5.1.1 User unknown\r\n"
    )
    seen = explain(ctx, raw)
    assert seen["class"] == "person" and seen["action"] == "created"
    assert [r["address"] for r in seen["failed_recipients"]] == ["dad@family.example"]
    outcome = ingest(ctx, raw, source="smtp")
    assert outcome.action == "created"
    assert queries.ticket(outcome.ticket).subject == "Undelivered Mail Returned to Sender"
    # Anybody can write such a mail: it never marks an address undeliverable.
    for address in ("dad@family.example", "carla@customer.example"):
        contact = m.Contact.get_or_none(m.Contact.email == address)
        assert contact is None or contact.undeliverable_until is None


def test_a_list_alert_about_no_mail_of_ours_makes_no_ticket(ctx: Context) -> None:
    outcome = ingest(ctx, list_alert("<never-sent@example.org>", "Mail loop detected"), source="smtp")
    assert outcome.action == "ignored" and "mailing list" in (outcome.reason or "")
    assert m.Ticket.select().count() == 0


def test_a_customers_reply_keeps_their_name_on_file_current(ctx: Context) -> None:
    """The name a customer signs their reply with replaces the one on file (written with
    the reply's next statement); a reply without a name leaves it."""
    original = compose()
    created = ingest(ctx, original, source="smtp")
    assert m.Contact.get(m.Contact.email == "carla@customer.example").name == "Carla Customer"
    reply = reply_to(original, sender="Carla Q. Customer <Carla@Customer.example>", body="Hi")
    assert ingest(ctx, reply, source="smtp").ticket == created.ticket
    assert m.Contact.get(m.Contact.email == "carla@customer.example").name == "Carla Q. Customer"
    bare = reply_to(original, sender="carla@customer.example", body="Still down.")
    assert ingest(ctx, bare, source="smtp").ticket == created.ticket
    assert m.Contact.get(m.Contact.email == "carla@customer.example").name == "Carla Q. Customer"
    assert m.Contact.select().where(m.Contact.email == "carla@customer.example").count() == 1
