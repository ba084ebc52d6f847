"""Categories, urgency and impact (issue 13): set by agents and routing rules, seen everywhere."""

from __future__ import annotations

import email
import email.policy
import json
from pathlib import Path

import pytest

from mailgate.errors import ConfigError
from tests.desk import Desk, kinds, number_of, plain, to
from tests.support import compose, config_data, load_config, reply_to, write_config

CATEGORIES = {
    "tickets": {"categories": ["Cards", "Payments", "Other"]},
    "route": [{"name": "lost cards", "subject": ["lost"], "category": "cards",
               "urgency": "high", "impact": "low"}],
}  # fmt: skip


def opened(desk: Desk, subject: str = "The mobile online banking is down") -> tuple[int, bytes]:
    code, text = desk.send(compose(subject=subject), "carla@customer.example")
    assert code == 250, text
    (notice,) = [r.content for r in desk.deliver() if "alice@example.org" in r.rcpt_tos]
    return number_of(text), notice


@pytest.mark.config(CATEGORIES)
def test_an_agent_sets_category_urgency_and_impact_and_everybody_sees_them(desk: Desk) -> None:
    number, notice = opened(desk)
    body = "#category cards\n#urgency high\n#impact medium\n#assign jane\n"
    desk.send(reply_to(notice, sender="alice@example.org", body=body), "alice@example.org")
    ticket = desk.ticket(number)
    assert (ticket["category"], ticket["urgency"], ticket["impact"], ticket["priority"]) == (
        "Cards", "high", "medium", "high",
    )  # fmt: skip
    trail = [(e["kind"], e["new"]) for e in ticket["events"]]
    assert {("category", "Cards"), ("urgency", "high"), ("impact", "medium"),
            ("priority", "high")} <= set(trail)  # fmt: skip
    (assignment,) = to(desk.deliver(), "jane.doe@example.org", "assignment")
    assert "Category:  Cards" in plain(assignment)
    assert "Priority:  high (urgency high, impact medium)" in plain(assignment)
    shown = json.loads(desk.cli("tickets", "show", str(number), "--json").stdout)
    assert shown["category"] == "Cards"
    listed = json.loads(desk.cli("tickets", "list", "--category", "cards", "--json").stdout)
    assert [t["number"] for t in listed] == [number]
    other = json.loads(desk.cli("tickets", "list", "--category", "Other", "--json").stdout)
    assert other == []
    unknown = desk.cli("tickets", "list", "--category", "nonsense")
    assert unknown.returncode != 0 and "unknown category 'nonsense'" in unknown.stderr


@pytest.mark.config(CATEGORIES)
def test_an_unknown_category_is_a_command_error_and_changes_nothing(desk: Desk) -> None:
    number, notice = opened(desk)
    body = "#category loans\n#urgency high\n\nDear Carla, we are on it."
    desk.send(reply_to(notice, sender="alice@example.org", body=body), "alice@example.org")
    mails = desk.deliver()
    assert kinds(mails) == [("command_error", "alice@example.org")]
    assert "no category 'loans' (Cards, Payments, Other)" in plain(to(mails, "alice@example.org")[0])
    ticket = desk.ticket(number)
    assert (ticket["category"], ticket["urgency"], ticket["priority"]) == ("", "", "normal")
    # An explicit #priority wins over the matrix.
    body = "#urgency low\n#impact low\n#priority high\n"
    desk.send(reply_to(notice, sender="alice@example.org", body=body), "alice@example.org")
    assert desk.ticket(number)["priority"] == "high"


@pytest.mark.config(CATEGORIES)
def test_a_routing_rule_sets_them_for_a_new_ticket(desk: Desk) -> None:
    number, notice = opened(desk, subject="I lost my card")
    ticket = desk.ticket(number)
    assert (ticket["category"], ticket["urgency"], ticket["impact"]) == ("cards", "high", "low")
    assert ticket["priority"] == "normal"  # ITIL: high urgency, low impact
    parsed = email.message_from_bytes(notice, policy=email.policy.default)
    assert "Category:  cards" in plain(parsed)  # type: ignore[arg-type]


def test_check_refuses_a_route_category_that_is_not_configured(tmp_path: Path) -> None:
    data = config_data(tmp_path, f"sqlite:///{tmp_path}/x.db", CATEGORIES)
    data["route"][0]["category"] = "loans"
    with pytest.raises(ConfigError, match=r"route\[0\]\.category: 'loans' is not in tickets"):
        load_config(write_config(tmp_path / "mailgate.toml", data))
    data["route"][0]["category"] = "cards"
    data["priority_matrix"] = {"high": {"high": "urgent"}}
    with pytest.raises(ConfigError, match=r"priority_matrix\.high\.high: must be one of"):
        load_config(write_config(tmp_path / "mailgate.toml", data))
