"""Who may see and act on what: one rule for pages and the API.

An ``admin`` sees every ticket and the admin pages; an ``agent`` sees tickets of
their teams and tickets assigned to them. A ticket one may not see is answered
exactly like one that does not exist (404), so its number tells nothing. Lists
take the rule into their query (``scope``), so counts and pages are right.
"""

from __future__ import annotations

from starlette.exceptions import HTTPException

from mailgate.config import Agent, Config
from mailgate.errors import UsageError
from mailgate.search import Scope
from mailgate.store import directory, views
from mailgate.store.rows import TicketRow

NOT_FOUND = "no such ticket"


def teams_of(config: Config, agent: Agent) -> tuple[str, ...]:
    """The keys of the teams ``agent`` is a member of (tickets name their team by key)."""
    return tuple(team.key for team in config.teams if agent.key in team.members)


def may_see(config: Config, agent: Agent, *, team: str | None, assignee: str | None) -> bool:
    """May ``agent`` see a ticket of ``team`` (key) assigned to ``assignee`` (key)?"""
    if agent.role == "admin":
        return True
    return assignee == agent.key or (bool(team) and team in teams_of(config, agent))


def is_admin(agent: Agent) -> bool:
    return agent.role == "admin"


def scope(config: Config, agent: Agent) -> Scope | None:
    """The condition a ticket list adds for ``agent``; None for an admin (everything)."""
    if is_admin(agent):
        return None
    return Scope(teams=teams_of(config, agent), agent=agent.key)


def may_see_row(config: Config, agent: Agent, ticket: TicketRow) -> bool:
    if is_admin(agent):
        return True
    team = directory.team_by_id(ticket.team_id)
    assignee = directory.agent_by_id(ticket.assignee_id)
    return may_see(
        config,
        agent,
        team=team.key if team else None,
        assignee=assignee.key if assignee else None,
    )


def visible_ticket(config: Config, agent: Agent, number: int | str) -> TicketRow:
    """The ticket ``number`` if ``agent`` may see it; else 404, the same as no ticket."""
    try:
        found = views.ticket(number)
    except UsageError:
        raise HTTPException(404, NOT_FOUND) from None
    if not may_see_row(config, agent, found):
        raise HTTPException(404, NOT_FOUND)
    return found
