"""Time passing: the seeds' story with SLA clocks, pending reminders, auto-close, ratings, #time.

Every test runs against a SQLite file and the real PostgreSQL. Mail goes through
``ingest`` as a transport hands it over; the due work is ``mailgate.jobs.run`` — the
code ``mailgate jobs run --at`` and serve's scheduled job run — with ``at`` where the
story needs the clock to stand.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import re
import subprocess
import sys
import zoneinfo
from pathlib import Path
from typing import Any

import pytest

from mailgate import intake, jobs, sla, store
from mailgate.admin import tickets as admin
from mailgate.context import Context
from mailgate.store import models as m
from mailgate.store import tickets as ticket_rows
from mailgate.store.sla import SlaClock, Timer
from tests import queued
from tests.support import compose, reply_to, wait_for

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
OFFICE = ["08:00-12:30", "13:30-18:00"]
TIME: dict[str, Any] = {
    "gateway": {"timezone": "Europe/Berlin"},
    "route": [
        {"name": "vip outages", "sender": ["bigcorp.example"], "priority": "emergency",
         "assignee": "jane"},
    ],
    "calendar": [
        {"key": "office", "timezone": "Europe/Berlin", "mon": OFFICE, "tue": OFFICE,
         "wed": OFFICE, "thu": OFFICE, "fri": OFFICE, "holidays": ["2026-12-25"]},
    ],
    "sla": [
        {"key": "severity-a", "name": "Severity A", "priorities": ["emergency"],
         "resolution": "1h", "breach_team": "sysadmins"},
        {"key": "normal", "name": "Normal", "calendar": "office", "priorities": ["normal", "high"],
         "first_response": "2h", "next_response": "4h", "resolution": "8h"},
        {"key": "low", "name": "Low", "calendar": "office", "priorities": ["low"],
         "resolution": "3d"},
    ],
}  # fmt: skip


def notices(kind: str) -> list[tuple[list[str], str]]:
    """(recipients, the mail as text) of every queued notice of ``kind``."""
    found = []
    for item in m.OutboxItem.select().where(m.OutboxItem.notice == kind).order_by(m.OutboxItem.id):
        message = email.message_from_bytes(queued.mail(item), policy=email.policy.default)
        body = message.get_body(("plain",))
        text = body.get_content() if body is not None else ""  # type: ignore[union-attr]
        headers = "".join(f"{k}: {v}\n" for k, v in message.items())
        found.append((list(item.recipients), headers + "\n" + text))
    return found


def open_ticket(ctx: Context, raw: bytes) -> Any:
    outcome = intake.ingest(ctx, raw, source="smtp")
    assert outcome.ticket is not None, outcome
    found = ticket_rows.by_number(outcome.ticket)
    assert found is not None
    return found


def events(number: int, *kinds: str) -> list[dict[str, Any]]:
    detail = admin.detail(store_config(), number)
    return [e for e in detail["events"] if not kinds or e["kind"] in kinds]


_config: list[Any] = []


def store_config() -> Any:
    return _config[-1]


@pytest.fixture(autouse=True)
def _remember_config(request: pytest.FixtureRequest) -> None:
    if "ctx" in request.fixturenames:
        _config.append(request.getfixturevalue("ctx").config)


@pytest.mark.config(TIME)
def test_the_seeds_story_warns_jane_then_breaches_escalates_and_moves_once(ctx: Context) -> None:
    ticket = open_ticket(ctx, compose(sender="Ops <ops@bigcorp.example>", subject="Online banking is down"))
    assert (ticket.priority, ticket.assignee_id is not None) == ("emergency", True)
    shown = admin.detail(ctx.config, ticket.number)["sla"]
    assert shown["policy"] == "severity-a" and shown["calendar"] == "24x7"
    (clock,) = shown["clocks"]
    due = (ticket.created_at + dt.timedelta(hours=1, microseconds=999_999)).replace(microsecond=0)
    assert dt.datetime.fromisoformat(clock["due"]).utcoffset() == BERLIN.utcoffset(due)
    assert abs(dt.datetime.fromisoformat(clock["due"]).astimezone(dt.UTC).replace(tzinfo=None) - due) <= dt.timedelta(seconds=1)

    nine_49 = ticket.created_at + dt.timedelta(minutes=49)
    report = jobs.run(ctx, at=nine_49)
    assert [d.kind for d in report.done] == ["sla_warning"]
    ((to, warning),) = notices("sla_warning")
    assert to == ["jane.doe@example.org"]
    assert "X-Mailgate-Notice: sla_warning" in warning
    assert sla.local_iso(due, "Europe/Berlin")[11:16] in warning  # the due time, Berlin time
    assert jobs.run(ctx, at=nine_49).done == []  # once

    ten_01 = ticket.created_at + dt.timedelta(minutes=61)
    assert [d.kind for d in jobs.run(ctx, at=ten_01).done] == ["sla_breach"]
    ((to, breach),) = notices("sla_breach")
    assert to == ["carol@example.org"]  # Level 1's escalation contact
    assert "X-Mailgate-Notice: sla_breach" in breach and "BREACHED" in breach
    after = admin.detail(ctx.config, ticket.number)
    assert after["team"] == "sysadmins" and after["assignee"] == "jane"
    (recorded,) = events(ticket.number, "sla_breach")
    assert recorded["new"] == "resolution" and recorded["at"] == due.isoformat() + "Z"
    assert jobs.run(ctx, at=ten_01 + dt.timedelta(hours=5)).done == []
    assert len(notices("sla_breach")) == 1 and len(notices("sla_warning")) == 1
    assert admin.listing(ctx.config, breached=True, now=nine_49) == []
    listed = admin.listing(ctx.config, breached=True, now=ten_01)
    assert [t["number"] for t in listed] == [ticket.number]


@pytest.mark.config(TIME)
def test_a_normal_ticket_from_friday_1730_is_due_on_monday(ctx: Context) -> None:
    ticket = open_ticket(ctx, compose(subject="Statement missing"))
    friday = dt.datetime(2026, 11, 20, 17, 30, tzinfo=BERLIN).astimezone(dt.UTC).replace(tzinfo=None)
    travel_to(ticket.id, friday)
    with store.write_transaction():
        sla.recompute(ctx.config, ticket_rows.lock(ticket.id), _journal())
    clocks = {c["name"]: c for c in admin.detail(ctx.config, ticket.number)["sla"]["clocks"]}
    assert clocks["first_response"]["due"] == "2026-11-23T09:30:00+01:00"
    assert clocks["resolution"]["due"] == "2026-11-23T16:30:00+01:00"
    monday_noon = dt.datetime(2026, 11, 23, 11, 0)
    due_soon = admin.listing(ctx.config, due_before=monday_noon)
    assert [t["number"] for t in due_soon] == [ticket.number]
    assert admin.listing(ctx.config, due_before=friday) == []


@pytest.mark.config(TIME)
def test_a_pending_ticket_gets_one_reminder_then_is_resolved_and_closed_in_order(
    ctx: Context,
) -> None:
    ticket = open_ticket(ctx, compose(subject="Card blocked"))
    admin.set_status(ctx, ticket.number, "pending", "admin:cli")
    since = ticket_rows.by_id(ticket.id).updated_at
    three_days = since + dt.timedelta(days=3, minutes=1)
    assert [d.kind for d in jobs.run(ctx, at=three_days, dry_run=True).done] == ["pending_reminder"]
    assert notices("pending_reminder") == []  # a dry run writes nothing
    assert [d.kind for d in jobs.run(ctx, at=three_days).done] == ["pending_reminder"]
    assert jobs.run(ctx, at=three_days).done == []
    ((to, reminder),) = notices("pending_reminder")
    assert to == ["carla@customer.example"] and "waiting for your answer" in reminder

    # Down for a fortnight: the auto-resolve and the auto-close happen once, in order,
    # each with its real due time.
    report = jobs.run(ctx, at=since + dt.timedelta(days=14))
    assert [d.kind for d in report.done] == ["pending_close", "resolved_close"]
    assert admin.detail(ctx.config, ticket.number)["status"] == "closed"
    ((to, resolved),) = notices("auto_resolved")
    assert "reply to this mail" in resolved and notices("resolution") == []
    status = [(e["new"], e["at"]) for e in events(ticket.number, "status")]
    seven, twelve = since + dt.timedelta(days=7), since + dt.timedelta(days=12)
    assert status[-2:] == [
        ("resolved", seven.replace(microsecond=0).isoformat() + "Z"),
        ("closed", twelve.replace(microsecond=0).isoformat() + "Z"),
    ]


@pytest.mark.config(TIME)
def test_the_good_link_records_a_rating_and_a_tampered_one_records_nothing(ctx: Context) -> None:
    first = compose(subject="Cannot log in")
    ticket = open_ticket(ctx, first)
    admin.set_status(ctx, ticket.number, "resolved", "admin:cli")
    ((to, resolution),) = notices("resolution")
    good = re.search(r"Good: mailto:(\S+?)\?subject=", resolution)
    assert good is not None and good.group(1).startswith(f"support+rate-{ticket.number}-good-")

    rating = compose(to=good.group(1), subject="Rating: good", body="Quick and friendly, thanks!\n")
    assert intake.ingest(ctx, rating, source="smtp").action == "rated"
    shown = admin.detail(ctx.config, ticket.number)
    assert shown["status"] == "resolved"
    assert (shown["csat"]["rating"], shown["csat"]["comment"]) == ("good", "Quick and friendly, thanks!")
    ((to, thanks),) = notices("csat_thanks")
    assert to == ["carla@customer.example"] and "X-Mailgate-Notice: csat_thanks" in thanks

    forged = good.group(1).replace("-good-", "-bad-")  # the good signature on a bad rating
    outcome = intake.ingest(ctx, compose(to=forged, subject="Rating: bad", body="meh"), source="smtp")
    assert outcome.action == "appended"
    shown = admin.detail(ctx.config, ticket.number)
    assert shown["status"] == "resolved" and shown["csat"]["rating"] == "good"
    assert [e["kind"] for e in shown["events"]][-1] == "rating_rejected"
    assert len(notices("csat_thanks")) == 1 and notices("customer_reply") == []

    # Saying the problem persists, in a reply to the resolution, still reopens.
    raw = next(queued.mail(i) for i in m.OutboxItem.select().where(m.OutboxItem.notice == "resolution"))
    persists = reply_to(raw, sender="Carla Customer <carla@customer.example>", body="Still broken.")
    assert intake.ingest(ctx, persists, source="smtp").action == "reopened"


@pytest.mark.config(TIME)
def test_working_time_by_mail_and_by_cli_is_summed_per_agent(ctx: Context) -> None:
    ticket = open_ticket(ctx, compose(sender="Ops <ops@bigcorp.example>", subject="Slow"))
    (assignment,) = [
        queued.mail(i)
        for i in m.OutboxItem.select().where(m.OutboxItem.notice == "assignment")
        if i.recipients == ["jane.doe@example.org"]
    ]
    work = reply_to(assignment, sender="Jane Doe <jane.doe@example.org>",
                    body="#time 25m\n#note\nLooked at the load balancer.")  # fmt: skip
    intake.ingest(ctx, work, source="smtp")
    assert admin.time_spent(ctx, ticket.number, "bob", "1h30m") == 90
    shown = admin.detail(ctx.config, ticket.number)["working_time"]
    assert shown == {"total_minutes": 115, "by_agent": {"bob": 90, "jane": 25}}
    wrong = reply_to(assignment, sender="Jane Doe <jane.doe@example.org>", body="#time soon\nhi")
    intake.ingest(ctx, wrong, source="smtp")
    assert admin.detail(ctx.config, ticket.number)["working_time"]["total_minutes"] == 115
    (error,) = [text for _, text in notices("command_error")]
    assert "'#time soon'" in error


@pytest.mark.config(TIME)
def test_every_notice_says_its_kind_in_a_header(ctx: Context) -> None:
    open_ticket(ctx, compose(sender="Ops <ops@bigcorp.example>", subject="Down"))
    kinds = {i.notice for i in m.OutboxItem.select()}
    assert {"acknowledgement", "escalation", "assignment"} <= kinds
    for kind in kinds:
        for _, text in notices(kind):
            assert f"X-Mailgate-Notice: {kind}\n" in text


@pytest.mark.config(TIME)
def test_a_changed_policy_moves_due_times_at_the_next_start_with_an_event(
    ctx: Context, config_path: Path
) -> None:
    ticket = open_ticket(ctx, compose(subject="Transfer stuck"))
    sla.refresh(ctx.config)  # the stored clocks are this config's
    before = admin.detail(ctx.config, ticket.number)["sla"]["clocks"][-1]["due"]
    text = config_path.read_text().replace('resolution = "8h"', 'resolution = "4h"')
    config_path.write_text(text)
    from mailgate.config import load

    changed = load(config_path)
    assert sla.refresh(changed) == 1
    assert sla.refresh(changed) == 0  # once
    (moved,) = events(ticket.number, "sla_due_changed")
    assert moved["detail"] == "resolution" and moved["new"] != moved["old"]
    after = admin.detail(changed, ticket.number)["sla"]["clocks"][-1]["due"]
    assert after != before


@pytest.mark.config(TIME)
def test_a_failing_action_records_nothing_and_is_done_once_by_the_next_run(
    ctx: Context, tmp_path: Path
) -> None:
    ticket = open_ticket(ctx, compose(sender="Ops <ops@bigcorp.example>", subject="Down again"))
    broken = tmp_path / "site" / "sla_warning"
    broken.mkdir(parents=True)
    (broken / "subject.txt").write_text("{{ no_such_variable.at_all }}\n")
    from dataclasses import replace

    failing = replace(ctx, config=replace(ctx.config, templates=replace(ctx.config.templates, dir=str(tmp_path / "site"))))
    at = ticket.created_at + dt.timedelta(minutes=50)
    report = jobs.run(failing, at=at)
    assert report.done == [] and len(report.failed) == 1
    assert notices("sla_warning") == [] and events(ticket.number, "sla_warning") == []
    assert [d.kind for d in jobs.run(ctx, at=at).done] == ["sla_warning"]
    assert len(notices("sla_warning")) == 1


@pytest.mark.config(TIME)
def test_jobs_run_at_from_the_command_line(ctx: Context, config_path: Path) -> None:
    ticket = open_ticket(ctx, compose(sender="Ops <ops@bigcorp.example>", subject="Down"))
    at = (ticket.created_at + dt.timedelta(minutes=61)).replace(tzinfo=dt.UTC).astimezone(BERLIN)
    base = [sys.executable, "-m", "mailgate", "--config", str(config_path), "jobs", "run"]
    store.close()
    dry = subprocess.run([*base, "--at", at.strftime("%Y-%m-%dT%H:%M"), "--dry-run"],
                         capture_output=True, text=True, timeout=60, check=True)  # fmt: skip
    assert "sla_warning resolution: would warn" in dry.stdout
    assert "2 would be done" in dry.stdout
    done = subprocess.run([*base, "--at", at.isoformat()], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert "2 done" in done.stdout and "moved to sysadmins" in done.stdout
    assert len(notices("sla_breach")) == 1


def travel_to(ticket_id: int, when: dt.datetime) -> None:
    """Move a ticket's whole history so that it was created at ``when`` (test set-up)."""
    row = m.Ticket.get_by_id(ticket_id)
    delta = when - row.created_at
    with store.write_transaction():
        m.Ticket.update(created_at=when, updated_at=row.updated_at + delta).where(
            m.Ticket.id == ticket_id
        ).execute()
        for e in m.Event.select().where(m.Event.ticket == ticket_id):
            m.Event.update(at=e.at + delta).where(m.Event.id == e.id).execute()


def _journal() -> Any:
    from mailgate.events import Journal

    return Journal()


@pytest.mark.config({**TIME, "jobs": {"due_seconds": 1}, "lifecycle": {"pending_reminder_after": "1s"}})
def test_serve_runs_the_due_work_every_due_seconds(ctx: Context, serve_in_thread: Any) -> None:
    ticket = open_ticket(ctx, compose(subject="Question"))
    admin.set_status(ctx, ticket.number, "pending", "admin:cli")
    serve_in_thread(ctx, smtp=False, imap=False)
    wait_for(lambda: notices("pending_reminder"), timeout=20)


@pytest.mark.config(TIME)
def test_a_new_tickets_clocks_and_timers_are_those_its_stored_history_gives(ctx: Context) -> None:
    """The transaction that makes a ticket computes its clocks from the events it writes,
    reading none back: computed again from the stored history they are the same — for a
    ticket a mail opened, and one an agent opened with an answer (first response met)."""
    from mailgate.onbehalf import create_ticket

    jane = ctx.config.agent("jane")
    assert jane is not None
    opened = [
        open_ticket(ctx, compose(subject="Statement missing")).number,
        create_ticket(
            ctx, requester="dana@customer.example", subject="Your card", text="It is on its way.",
            agent=jane,
        ).number,
    ]  # fmt: skip
    stored = sorted((c.ticket_id, c.name, c.due_at, c.met_at) for c in SlaClock.select())
    timers = sorted((t.ticket_id, t.kind, t.key, t.due_at) for t in Timer.select())
    assert any(met is not None for *_, met in stored)  # the agent's answer met a clock
    for number in opened:
        found = ticket_rows.by_number(number)
        assert found is not None
        journal = _journal()
        with store.write_transaction():
            moved = sla.recompute(ctx.config, ticket_rows.lock(found.id), journal, announce=True)
        assert moved == [] and journal.items == []
    assert sorted((c.ticket_id, c.name, c.due_at, c.met_at) for c in SlaClock.select()) == stored
    assert sorted((t.ticket_id, t.kind, t.key, t.due_at) for t in Timer.select()) == timers
