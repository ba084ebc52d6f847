"""`mailgate report` against a hand-computed week: every figure checked to the second.

The story is played with the real verbs (mail through ``ingest``, the agent and
admin commands of the CLI); then each step's events are dated to the minute the
story says (the database keeps "now" otherwise), like the other tests that move
timestamps. Runs on a SQLite file and on the real PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from mailgate import intake, sla, store
from mailgate.cli import main
from mailgate.context import Context
from mailgate.events import Journal
from mailgate.store import models as m
from mailgate.store import tickets as ticket_rows
from mailgate.store.csat import CsatRating
from mailgate.store.worktime import WorkTime
from tests import queued
from tests.support import compose

WEEK = ("--from", "2026-03-02", "--to", "2026-03-08")
CONFIG: list[Any] = []
OFFICE = ["08:00-12:30", "13:30-18:00"]
OFFICE_HOURS: dict[str, Any] = {
    "gateway": {"timezone": "Europe/Berlin"},
    "calendar": [
        {"key": "office", "mon": OFFICE, "tue": OFFICE, "wed": OFFICE, "thu": OFFICE, "fri": OFFICE}
    ],
    "sla": [
        {
            "key": "normal",
            "name": "Normal",
            "calendar": "office",
            "priorities": ["normal", "high"],
            "first_response": "2h",
            "resolution": "8h",
        }
    ],
}


@pytest.fixture(autouse=True)
def _config(ctx: Context) -> None:
    CONFIG.append(ctx.config)


def at(when: str, action: Callable[[], Any]) -> Any:
    """Run ``action``; every event, rating and working time it wrote, and the tickets it
    touched, are dated ``when`` (UTC); SLA clocks are computed again from that history."""
    moment = dt.datetime.fromisoformat(when)
    before = max((e.id for e in m.Event.select(m.Event.id)), default=0)
    ratings = max((r.id for r in CsatRating.select(CsatRating.id)), default=0)
    work = max((w.id for w in WorkTime.select(WorkTime.id)), default=0)
    result = action()
    CsatRating.update(at=moment).where(CsatRating.id > ratings).execute()
    WorkTime.update(at=moment).where(WorkTime.id > work).execute()
    touched = {e.ticket_id for e in m.Event.select().where(m.Event.id > before)}
    for event in m.Event.select().where(m.Event.id > before):
        event.at = moment
        event.save()
        ticket = m.Ticket.get_by_id(event.ticket_id)
        fields: dict[str, Any] = {"updated_at": moment}
        if event.kind == "created":
            fields["created_at"] = moment
        if event.kind == "first_response":
            fields["first_response_at"] = moment
        m.Ticket.update(**fields).where(m.Ticket.id == ticket.id).execute()
    with store.write_transaction():
        for ticket_id in touched:
            row = ticket_rows.by_id(ticket_id)
            assert row is not None
            sla.recompute(CONFIG[-1], row, Journal())
    return result


def mail(ctx: Context, **fields: Any) -> int:
    outcome = intake.ingest(ctx, compose(**fields), source="pipe")
    assert outcome.ticket is not None, outcome
    return int(outcome.ticket)


def cli(ctx: Context, *args: str) -> None:
    assert main(["--config", str(ctx.config.path), *args]) == 0


def report(ctx: Context, capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    capsys.readouterr()
    code = main(["--config", str(ctx.config.path), "report", *args])
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


@pytest.fixture
def week(ctx: Context) -> dict[str, int]:
    """Five tickets; the figures below are computed by hand from this story."""
    carla, eve = "Carla <carla@customer.example>", "Eve <eve@customer.example>"
    t5 = at("2026-03-01 23:00", lambda: mail(ctx, sender=eve, subject="Old and open"))
    t1 = at("2026-03-02 09:00", lambda: mail(ctx, sender=carla, subject="Card terminal down"))
    at(
        "2026-03-02 10:00",
        lambda: cli(
            ctx, "tickets", "reply", str(t1), "--as", "jane", "--text", "Please restart it."
        ),
    )
    at("2026-03-02 11:00", lambda: cli(ctx, "tickets", "status", str(t1), "pending"))
    tag = f"[EB#{t1}]"
    at("2026-03-02 15:00", lambda: mail(ctx, sender=carla, subject=f"Re: {tag} x", body="Still."))
    at("2026-03-02 16:00", lambda: cli(ctx, "tickets", "status", str(t1), "resolved"))
    at("2026-03-03 09:00", lambda: mail(ctx, sender=carla, subject=f"Re: {tag} x", body="Again!"))
    at("2026-03-03 10:00", lambda: cli(ctx, "tickets", "status", str(t1), "resolved"))
    t2 = at("2026-03-04 09:00", lambda: mail(ctx, sender="bob@bigcorp.example", subject="Login"))
    at(
        "2026-03-04 09:30",
        lambda: cli(
            ctx, "tickets", "note", str(t2), "--as", "jane", "--text", "Same as the other one?"
        ),
    )
    at(
        "2026-03-04 11:00",
        lambda: cli(
            ctx, "tickets", "reply", str(t2), "--as", "alice", "--text", "Looking into it."
        ),
    )
    t3 = at(
        "2026-03-04 12:00",
        lambda: mail(
            ctx, sender="dan@bigcorp.example", to="banking@example.org", subject="Login too"
        ),
    )
    at("2026-03-04 12:30", lambda: cli(ctx, "tickets", "merge", str(t2), str(t3)))
    at(
        "2026-03-05 08:00",
        lambda: cli(ctx, "tickets", "reply", str(t3), "--as", "jane", "--text", "Fixed soon."),
    )
    t4 = at("2026-03-06 10:00", lambda: mail(ctx, sender=eve, subject="Invoice"))
    at(
        "2026-03-06 10:15",
        lambda: cli(ctx, "tickets", "reply", str(t4), "--as", "jane", "--text", "Sent again."),
    )
    at("2026-03-06 11:15", lambda: cli(ctx, "tickets", "status", str(t4), "closed"))
    return {"t1": t1, "t2": t2, "t3": t3, "t4": t4, "t5": t5}


def test_the_figures_of_a_hand_computed_week(
    ctx: Context, week: dict[str, int], capsys: pytest.CaptureFixture[str]
) -> None:
    got = json.loads(report(ctx, capsys, *WEEK, "--json", "--by", "team"))
    assert got["volume"] == {
        "opened": 4,  # t1..t4; t5 was opened before the week; t2's merge is no resolution
        "reopened": 1,  # t1 by Carla's "Again!"
        "resolved": 3,  # t1 twice, t4 (closed straight from open)
        "closed": 1,
        "customer_messages": 6,  # four new tickets, Carla's two replies
        "agent_messages": 4,
        "notes": 1,
    }
    # first answers: t1 1h, t2 2h, t3 20h, t4 15m
    assert got["first_response"] == {"median_s": 5400, "p90_s": 72000, "mean_s": 20925, "count": 4}
    # time new/open up to each resolution: t1 2h + 1h (3h pending left out), then + 1h
    # after the reopen; t4 1h15m
    assert got["resolution"] == {"median_s": 10800, "p90_s": 14400, "mean_s": 9900, "count": 3}
    assert got["rates"] == {"reopen_rate": 0.3333, "one_touch_resolution_rate": 0.6667}
    assert [b["open"] for b in got["backlog"]] == [1, 1, 2, 2, 2, 2, 2]  # t5; then t3 too
    age = got["open_age"]
    assert (age["count"], age["median_s"], age["max_s"]) == (2, 498600, 608400)
    jane = next(w for w in got["workload"] if w["agent"] == "jane")
    assert (jane["replies"], jane["notes"], jane["resolved"]) == (3, 1, 0)  # CLI without --as
    alice = next(w for w in got["workload"] if w["agent"] == "alice")
    assert alice["replies"] == 1
    assert got["common"]["requester_domains"] == [
        {"key": "customer.example", "count": 2},
        {"key": "bigcorp.example", "count": 2},
    ]
    groups = {g["key"]: g for g in got["groups"]}
    assert groups["level1"]["volume"]["opened"] == 3 and groups["level1"]["volume"]["resolved"] == 3
    assert groups["online-banking"]["volume"]["opened"] == 1
    assert groups["online-banking"]["first_response"]["median_s"] == 72000
    per_day = {d["day"]: d for d in got["per_day"]}
    assert per_day["2026-03-02"]["opened"] == 1 and per_day["2026-03-02"]["resolved"] == 1
    assert got["sla"]["attainment"] is None and got["csat"]["count"] == 0
    weeks = json.loads(report(ctx, capsys, *WEEK, "--json", "--by", "week"))["groups"]
    assert [(w["key"], w["volume"]["opened"], w["volume"]["resolved"]) for w in weeks] == [
        ("2026-03-02", 4, 3)  # the week begins on Monday the 2nd
    ]


def test_text_csv_and_the_page_show_the_numbers_of_the_json(
    ctx: Context, week: dict[str, int], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    got = json.loads(report(ctx, capsys, *WEEK, "--json"))
    text = report(ctx, capsys, *WEEK)
    assert "opened 4" in text and "resolved 3" in text and "median 1h 30m" in text
    rows = report(ctx, capsys, *WEEK, "--csv", "--by", "day").splitlines()
    assert rows[0].startswith("group,opened,reopened,resolved")
    assert rows[1].split(",")[:4] == ["all", "4", "1", "3"] and len(rows) == 1 + 1 + 5
    page = tmp_path / "report.html"
    assert report(ctx, capsys, *WEEK, "--html", str(page)).startswith("report written")
    html = page.read_text()
    assert html.count("<svg") == 4
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:|url\(\s*["']?https?:""", html)
    assert "<script" not in html
    assert f"<td>opened</td><td>{got['volume']['opened']}</td>" in html


def test_bad_report_input_is_one_line(ctx: Context, capsys: pytest.CaptureFixture[str]) -> None:
    for args, expected in (
        (("--from", "2026-02-30"), "use YYYY-MM-DD"),
        (("--to", "March"), "use YYYY-MM-DD"),
        (("--from", "2026-03-09", "--to", "2026-03-01"), "is before --from"),
    ):
        code = main(["--config", str(ctx.config.path), "report", *args])
        err = capsys.readouterr().err
        assert code != 0 and len(err.strip().splitlines()) == 1 and expected in err, err


@pytest.mark.config(OFFICE_HOURS)
def test_working_time_sla_attainment_csat_and_time_spent_in_office_hours(
    ctx: Context, capsys: pytest.CaptureFixture[str]
) -> None:
    """Berlin office hours 08:00-12:30, 13:30-18:00 on weekdays; times below are UTC (+1)."""
    a = at("2026-03-06 16:30", lambda: mail(ctx, subject="Friday 17:30"))
    at(
        "2026-03-09 07:45",
        lambda: cli(ctx, "tickets", "reply", str(a), "--as", "jane", "--text", "On it."),
    )
    at("2026-03-09 08:00", lambda: cli(ctx, "tickets", "time", str(a), "25m", "--as", "jane"))
    at("2026-03-09 08:45", lambda: cli(ctx, "tickets", "status", str(a), "resolved"))
    b = at("2026-03-09 07:00", lambda: mail(ctx, subject="Monday 08:00, never answered"))
    raw = next(queued.mail(i) for i in m.OutboxItem.select() if i.notice == "resolution")
    body = email.message_from_bytes(raw, policy=email.policy.default).get_body(("plain",))
    resolution = body.get_content() if body is not None else ""  # type: ignore[union-attr]
    good = re.search(r"Good: mailto:(\S+?)\?subject=", resolution)
    assert good is not None
    rated = at(
        "2026-03-09 09:00",
        lambda: intake.ingest(
            ctx, compose(to=good.group(1), subject="Rating: good"), source="pipe"
        ),
    )
    assert rated.action == "rated" and b
    got = json.loads(report(ctx, capsys, "--from", "2026-03-06", "--to", "2026-03-10", "--json"))
    # Friday 17:30-18:00 and Monday 08:00-08:45 at work: 75 minutes, not 63 hours
    assert got["first_response"]["median_s"] == 75 * 60
    assert got["resolution"]["median_s"] == (30 + 105) * 60
    # a: both clocks met; b: its first response (due 10:00) and resolution (17:00) ran out
    assert got["sla"]["clocks"] == {
        "first_response": {"met": 1, "breached": 1, "attainment": 0.5},
        "resolution": {"met": 1, "breached": 1, "attainment": 0.5},
    }
    assert got["csat"] == {"good": 1, "bad": 0, "count": 1, "share_good": 1.0}
    jane = next(w for w in got["workload"] if w["agent"] == "jane")
    assert (jane["replies"], jane["working_minutes"]) == (1, 25)
