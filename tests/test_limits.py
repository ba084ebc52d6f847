"""Two hundred strangers at once must not silence everyone (issue 9), through the pipe and
the CLI: the overall window holds back acknowledgements to new senders first, never staff
notices; what it holds goes out when the window opens (or an admin resets it);
acknowledgements held too long are dropped with an event.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailgate.context import Context
from mailgate.store import models as m
from tests.support import compose, config_data, write_config


def mailgate(config_path: Path, *args: str, stdin: bytes | None = None) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config_path), *args],
        input=stdin,
        capture_output=True,
        timeout=60,
        cwd=config_path.parent,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.decode()


def items(notice: str) -> list[m.OutboxItem]:
    return list(
        m.OutboxItem.select().where(m.OutboxItem.notice == notice).order_by(m.OutboxItem.id)
    )


@pytest.mark.config({"outbound": {"limits": {"overall": ["5/1h"], "per_ticket": ["20/1h"]}}})
def test_strangers_exhausting_the_overall_window_hold_acknowledgements_not_staff_notices(
    ctx: Context, config_path: Path
) -> None:
    for i in range(6):
        raw = compose(sender=f"stranger{i}@outside.example", subject=f"Question {i}")
        assert mailgate(config_path, "ingest", "-", stdin=raw).startswith("created [")
    now = m.utcnow()
    acks = items("acknowledgement")
    assert len(acks) == 6  # every acknowledgement is queued: none suppressed, none lost
    held = [a for a in acks if a.next_attempt_at > now]
    assert len(held) == 4 and all(a.last_error.startswith("held: circuit breaker") for a in held)
    assert all(a.next_attempt_at > now + dt.timedelta(minutes=50) for a in held)
    assignments = items("assignment")
    assert len(assignments) == 12  # alice and bob hear of every ticket, at once
    assert all(a.next_attempt_at <= now and not a.last_error for a in assignments)
    assert m.Event.select().where(m.Event.kind == "notice_held").count() == 4
    assert m.Event.select().where(m.Event.kind == "notice_suppressed").count() == 0

    shown = json.loads(mailgate(config_path, "limits", "show", "--json"))
    assert [h["id"] for h in shown["held"]] == [a.id for a in held]
    assert "acknowledgements are held first" in shown["held"][0]["why"]
    assert shown["overall"][0]["limit"] == 5
    assert "ID" in mailgate(config_path, "limits", "show")

    # One held acknowledgement waited longer than held_acknowledgement_max_age (6h).
    stale = held[0]
    m.OutboxItem.update(created_at=now - dt.timedelta(hours=7)).where(
        m.OutboxItem.id == stale.id
    ).execute()
    assert "4 held mails due now" in mailgate(config_path, "limits", "reset")
    mailgate(config_path, "outbox", "flush")
    after = {a.id: a for a in items("acknowledgement")}
    assert after[stale.id].status == "failed"
    assert after[stale.id].last_error.startswith("dropped: held by the circuit breaker")
    assert m.Event.select().where(m.Event.kind == "notice_dropped").count() == 1
    assert all(after[a.id].status == "sent" for a in held[1:])
    assert json.loads(mailgate(config_path, "limits", "show", "--json"))["held"] == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lifecycle": {"max_collaborators": -1}}, "lifecycle.max_collaborators: must not be"),
        ({"outbound": {"max_recipients": 0}}, "outbound.max_recipients: must be at least 1"),
        (
            {"outbound": {"limits": {"held_acknowledgement_max_age": "soon"}}},
            "outbound.limits.held_acknowledgement_max_age: 'soon' is not a duration",
        ),
    ],
)
def test_bad_limit_values_are_one_line_naming_key_and_file(
    tmp_path: Path, overrides: dict[str, Any], message: str
) -> None:
    data = config_data(tmp_path, f"sqlite:///{tmp_path / 'm.db'}", overrides)
    path = write_config(tmp_path / "bad.toml", data)
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(path), "check"],
        capture_output=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 78
    (line,) = done.stderr.decode().strip().splitlines()
    assert message in line and str(path) in line


def test_the_breaker_forgets_what_its_windows_no_longer_count_and_keeps_the_rest(
    ctx: Context,
) -> None:
    """The hourly prune deletes the bookkeeping older than the longest window, by id (the
    log has no index by time: issue 16), and never a row a window still counts — a held
    mail is counted when it is due, later than the rows written after it."""
    from mailgate import store
    from mailgate.store import breaker

    now = m.utcnow()
    hours = dt.timedelta(hours=1)
    with store.write_transaction():
        breaker.count([("old@customer.example", 1), ("staff:alice@example.org", 1)], now - 3 * hours)
        breaker.count([("held@customer.example", 2)], now + hours / 2)  # due in half an hour
        breaker.count([("later@customer.example", 3)], now - 2 * hours)
        breaker.count([("recent@customer.example", 4)], now - hours / 6)
        breaker.prune(now - hours)

    def logged() -> list[str]:
        return [r.recipient for r in m.AutoMailLog.select().order_by(m.AutoMailLog.id)]

    assert logged() == ["held@customer.example", "later@customer.example", "recent@customer.example"]
    everyone = ["held@customer.example", "later@customer.example", "recent@customer.example"]
    assert breaker.per_recipient(everyone, now - hours) == {
        "held@customer.example": 1,
        "recent@customer.example": 1,
    }
    assert breaker.per_ticket(2, now - hours, 10) == 1
    with store.write_transaction():
        breaker.prune(now + hours)  # an hour on: the held mail is past the window too
    assert logged() == []
    with store.write_transaction():
        breaker.prune(now + 2 * hours)  # nothing left: nothing to do
    assert logged() == []
