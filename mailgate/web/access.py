"""Who may see and act on what: one rule for pages and the API.

An ``admin`` sees every ticket and the admin pages; an ``agent`` sees tickets of
their teams and tickets assigned to them. A ticket one may not see is answered
exactly like one that does not exist (404), so its number tells nothing.
"""

from __future__ import annotations

from typing import Any

from mailgate.config import Agent, Config
from mailgate.errors import UsageError
from mailgate.store import directory, views
from mailgate.store.rows import TicketRow


def teams_of(config: Config, agent: Agent) -> tuple[str, ...]:
    """The keys of the teams ``agent`` is a member of (tickets name their team by key)."""
    return tuple(team.key for team in config.teams if agent.key in team.members)


def scope(config: Config, agent: Agent) -> dict[str, Any]:
    """The same rule as ``may_see``, as ``search.Options`` fields: in the SQL query.

    ``Options(..., **scope(config, agent))``: an admin is not limited.
    """
    if agent.role == "admin":
        return {"visible_to_teams": None, "visible_to_agent": ""}
    return {"visible_to_teams": teams_of(config, agent), "visible_to_agent": agent.key}


def may_see(config: Config, agent: Agent, *, team: str | None, assignee: str | None) -> bool:
    """May ``agent`` see a ticket of ``team`` assigned to ``assignee``?"""
    if agent.role == "admin":
        return True
    return assignee == agent.key or (bool(team) and team in teams_of(config, agent))


def visible_ticket(config: Config, agent: Agent, number: int | str) -> TicketRow | None:
    """Ticket ``number`` if it exists and ``agent`` may see it; else None (answer 404)."""
    try:
        row = views.ticket(number)
    except UsageError:
        return None
    team = directory.team_by_id(row.team_id)
    assignee = directory.agent_by_id(row.assignee_id)
    visible = may_see(
        config,
        agent,
        team=None if team is None else team.key,
        assignee=None if assignee is None else assignee.key,
    )
    return row if visible else None


def is_admin(agent: Agent) -> bool:
    return agent.role == "admin"
