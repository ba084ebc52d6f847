"""The suspended queue (issue 13): spam and blocked senders get no ticket and no backscatter.

Spam verdicts come in the headers our MTA's filter adds (the pipe is the MTA's way in);
the same headers straight at the listener prove nothing. What leaves is read at the relay.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from mailgate.admin import suspended
from mailgate.store.db import utcnow
from tests.desk import Desk, kinds, number_of
from tests.support import compose, reply_to

SPAMMER = "Prize Office <winner@lottery.example>"


def spam(headers: dict[str, str], **kwargs: object) -> bytes:
    return compose(sender=SPAMMER, subject="You have won", headers=headers, **kwargs)  # type: ignore[arg-type]


def piped(desk: Desk, raw: bytes) -> dict[str, object]:
    result = desk.pipe(raw, "--json")
    assert result.returncode == 0, result.stderr
    outcome: dict[str, object] = json.loads(result.stdout)
    return outcome


def listed(desk: Desk) -> list[dict[str, object]]:
    result = desk.cli("suspended", "list", "--json")
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


def test_spam_marked_by_our_filter_is_suspended_and_released_with_one_acknowledgement(
    desk: Desk,
) -> None:
    outcome = piped(desk, spam({"X-Spam-Flag": "YES", "X-Spam-Status": "Yes, score=8.1"}))
    assert (outcome["action"], outcome["ticket"]) == ("suspended", None)
    assert desk.deliver() == []  # no acknowledgement to a forged sender
    (row,) = listed(desk)
    assert set(row) == {"id", "received_at", "sender", "subject", "reason"}
    assert (row["sender"], row["subject"]) == ("winner@lottery.example", "You have won")
    assert "X-Spam-Flag" in str(row["reason"]) and "8.1" in str(row["reason"])
    shown = desk.cli("suspended", "show", str(row["id"]))
    assert "reason: spam" in shown.stdout
    # It was a real customer after all: released, it is a ticket with one acknowledgement.
    released = desk.cli("suspended", "release", str(row["id"]), "--json")
    assert released.returncode == 0, released.stderr
    assert json.loads(released.stdout)["action"] == "created"
    mails = desk.deliver()
    assert ("acknowledgement", "winner@lottery.example") in kinds(mails)
    assert [k for k in kinds(mails) if k[1] == "winner@lottery.example"] == [
        ("acknowledgement", "winner@lottery.example")
    ]
    assert listed(desk) == []
    again = desk.cli("suspended", "release", str(row["id"]))
    assert again.returncode != 0 and "no suspended mail" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_scores_and_where_the_headers_came_from(desk: Desk) -> None:
    rspamd = {"X-Spamd-Result": "default: False [7.50 / 15.00]; BAYES_SPAM(5.1)"}
    assert piped(desk, spam(rspamd))["action"] == "suspended"  # above spam.threshold (5.0)
    low = {"X-Spamd-Result": "default: False [3.20 / 15.00]"}
    assert piped(desk, spam(low, body="a real question"))["action"] == "created"
    # Straight at the listener nobody vouches for the header: a ticket as usual.
    code, answer = desk.send(spam({"X-Spam-Flag": "YES"}, body="third"), "winner@lottery.example",
                             ["support@example.org"])  # fmt: skip
    assert code == 250 and "created" in answer, answer
    assert len(listed(desk)) == 1


@pytest.mark.config({"spam": {"trust_headers": False, "block": ["spam.example"]}})
def test_blocked_senders_are_suspended_and_headers_can_be_ignored(desk: Desk) -> None:
    assert piped(desk, spam({"X-Spam-Flag": "YES"}))["action"] == "created"
    raw = compose(sender="seo@mail.spam.example", subject="Rank first on Google")
    code, answer = desk.send(raw, "seo@mail.spam.example", ["support@example.org"])
    assert code == 250 and "suspended" in answer, answer
    assert [r["sender"] for r in listed(desk)] == ["seo@mail.spam.example"]
    sent_to = [rcpt for r in desk.deliver() for rcpt in r.rcpt_tos]
    assert "seo@mail.spam.example" not in sent_to


def test_a_customers_reply_is_flagged_not_suspended_below_the_hard_threshold(desk: Desk) -> None:
    _code, answer = desk.send(compose(), "carla@customer.example")
    number = number_of(answer)
    (ack,) = [r.content for r in desk.deliver() if "carla@customer.example" in r.rcpt_tos]
    reply = reply_to(ack, sender="Carla <carla@customer.example>", body="Still down! URGENT!!!",
                     headers={"X-Spam-Status": "Yes, score=9.0"})  # fmt: skip
    assert piped(desk, reply)["action"] == "appended"
    events = [(e["kind"], e["detail"]) for e in desk.ticket(number)["events"]]
    assert any(kind == "spam_flagged" and "9" in detail for kind, detail in events)
    assert ("customer_reply", "alice@example.org") in kinds(desk.deliver())
    worse = reply_to(ack, sender="carla@customer.example", body="Buy now",
                     headers={"X-Spam-Status": "Yes, score=22.0"})  # fmt: skip
    assert piped(desk, worse)["action"] == "suspended"


def test_delete_and_purge_empty_the_queue(desk: Desk) -> None:
    for n in range(3):
        piped(desk, spam({"X-Spam-Flag": "YES"}, body=f"spam {n}"))
    first = listed(desk)[0]
    deleted = desk.cli("suspended", "delete", str(first["id"]))
    assert deleted.returncode == 0, deleted.stderr
    assert len(listed(desk)) == 2
    purged = desk.cli("suspended", "purge", "--older-than", "30d")
    assert "purged 0 suspended mails" in purged.stdout
    later = utcnow() + dt.timedelta(days=31)
    assert suspended.purge(desk.ctx, "30d", now=later) == 2
    assert listed(desk) == []
    bad = desk.cli("suspended", "purge", "--older-than", "soon")
    assert bad.returncode != 0 and "--older-than" in bad.stderr


def test_explain_says_a_spam_mail_would_be_suspended(desk: Desk, tmp_path: Path) -> None:
    path = tmp_path / "spam.eml"
    path.write_bytes(spam({"X-Spam-Flag": "YES"}))
    result = desk.cli("explain", str(path), "--json")
    assert result.returncode == 0, result.stderr
    explained = json.loads(result.stdout)
    assert explained["action"] == "suspended"
    assert any(line.startswith("suspended: spam: X-Spam-Flag") for line in explained["trace"])
    assert listed(desk) == []  # explaining writes nothing
