"""The ticket lifecycle: one writer of ticket state, so a rule holds whoever acts.

The rule these tests hold: a ``new`` ticket becomes ``open`` as soon as somebody
works on it — it is assigned to an agent (by a mail command, the CLI, a routing
rule or a team's auto-assignment, also when it is created) or an agent answers
it. A note or a priority change alone leaves it ``new``.
"""

from __future__ import annotations

from typing import Any

import pytest

from mailgate.admin import tickets as actions
from mailgate.context import Context
from mailgate.intake import ingest
from mailgate.store import models as m
from mailgate.store import views as queries
from tests import queued
from tests.support import compose, reply_to


def created(ctx: Context, **kwargs: Any) -> int:
    outcome = ingest(ctx, compose(**kwargs), source="smtp")
    assert outcome.action == "created" and outcome.ticket is not None
    return outcome.ticket


def state(ctx: Context, number: int) -> dict[str, Any]:
    return queries.ticket_detail(ctx.config, queries.ticket(number))


def status_changes(ctx: Context, number: int) -> list[tuple[str, str, str]]:
    return [
        (e["old"], e["new"], e["actor"])
        for e in state(ctx, number)["events"]
        if e["kind"] == "status"
    ]


def assignment_notice(agent: str) -> bytes:
    for item in m.OutboxItem.select().order_by(m.OutboxItem.id.desc()):
        if agent in item.recipients and item.notice == "assignment":
            return queued.mail(item)
    raise AssertionError(f"no assignment notice for {agent}")


def by_mail(ctx: Context, agent: str, body: str) -> None:
    outcome = ingest(
        ctx, reply_to(assignment_notice(agent), sender=agent, body=body), source="smtp"
    )
    assert outcome.action == "appended", outcome


def test_a_new_ticket_assigned_by_a_mail_command_becomes_open(ctx: Context) -> None:
    number = created(ctx)
    assert state(ctx, number)["status"] == "new"
    by_mail(ctx, "alice@example.org", "#assign me")
    after = state(ctx, number)
    assert (after["assignee"], after["status"]) == ("alice", "open")
    assert status_changes(ctx, number) == [("new", "open", "agent:alice")]


def test_a_new_ticket_assigned_from_the_cli_becomes_open(ctx: Context) -> None:
    number = created(ctx)
    assert actions.assign(ctx, number, "jane", "admin:cli")
    assert state(ctx, number)["status"] == "open"
    assert status_changes(ctx, number) == [("new", "open", "admin:cli")]


@pytest.mark.config({"route": [{"name": "invoices", "subject": ["invoice"], "assignee": "bob"}]})
def test_a_ticket_a_routing_rule_assigns_is_open_from_the_start(ctx: Context) -> None:
    number = created(ctx, subject="Invoice 2026-11 is wrong")
    after = state(ctx, number)
    assert (after["assignee"], after["status"]) == ("bob", "open")
    assert status_changes(ctx, number) == [("new", "open", "system:route:invoices")]


def test_a_ticket_auto_assigned_by_its_team_is_open_from_the_start(ctx: Context) -> None:
    # The banking mailbox's team (Online Banking) assigns round robin.
    number = created(ctx, to="banking@example.org", subject="Card blocked")
    after = state(ctx, number)
    assert after["assignee"] == "bob" and after["status"] == "open"
    assert status_changes(ctx, number) == [("new", "open", "system:auto-assign")]


def test_a_new_ticket_moved_to_an_auto_assigning_team_becomes_open(ctx: Context) -> None:
    number = created(ctx)
    actions.set_team(ctx, number, "online-banking", "admin:cli")
    after = state(ctx, number)
    assert after["assignee"] == "bob" and after["status"] == "open"


def test_a_new_ticket_an_agent_answers_becomes_open(ctx: Context) -> None:
    number = created(ctx)
    actions.reply(ctx, number, "alice", "We are looking into it.")
    after = state(ctx, number)
    assert after["status"] == "open" and after["first_response_at"] is not None


def test_a_note_or_a_priority_change_alone_leaves_a_new_ticket_new(ctx: Context) -> None:
    number = created(ctx)
    by_mail(ctx, "alice@example.org", "#priority high\n#note\nCalled the customer back.")
    actions.note(ctx, number, "bob", "Same problem at the branch office.")
    assert actions.set_priority(ctx, number, "emergency", "admin:cli")
    after = state(ctx, number)
    assert (after["status"], after["priority"], after["assignee"]) == ("new", "emergency", None)
    assert status_changes(ctx, number) == []


def test_unassigning_or_assigning_a_resolved_ticket_changes_no_status(ctx: Context) -> None:
    number = created(ctx)
    assert actions.set_status(ctx, number, "resolved", "admin:cli")
    assert actions.assign(ctx, number, "jane", "admin:cli")
    assert state(ctx, number)["status"] == "resolved"
    other = created(ctx, subject="Second problem")
    assert not actions.assign(ctx, other, None, "admin:cli")  # nobody to nobody: no change
    assert state(ctx, other)["status"] == "new"
