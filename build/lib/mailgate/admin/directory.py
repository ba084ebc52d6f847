"""Agents and teams for admins: who is who, their open tickets, and the teams' queues."""

from __future__ import annotations

from typing import Any

from mailgate.config import Config
from mailgate.store import views


def agents(config: Config) -> list[dict[str, Any]]:
    return views.agents(config)


def teams(config: Config) -> list[dict[str, Any]]:
    return views.teams(config)
