"""Per-agent tokens of the JSON API: ``mailgate agents token KEY`` and the API's check.

A token is ``mg_`` and 32 random bytes (URL-safe base64); only its SHA-256 is
stored (``store.apitokens``), so the token is shown once, when it is made. A
token authenticates its agent only while the agent is in the config: one removed
from it is refused, and its tokens are revoked (when the config is mirrored — serve's
start and reload, ``db upgrade`` — or at the token's next use): an agent added back
with the same key starts without tokens.
"""

from __future__ import annotations

import secrets
from typing import Any

from mailgate.config import Agent, Config
from mailgate.errors import UsageError
from mailgate.store import apitokens, directory, write_transaction

PREFIX = "mg_"


def issue(config: Config, agent_key: str) -> str:
    """A new token for the configured agent ``agent_key``; the only time it is seen."""
    agent = _configured(config, agent_key)
    token = PREFIX + secrets.token_urlsafe(32)
    with write_transaction():
        apitokens.add(directory.agent_row(agent.key, config).id, token)
    return token


def listing(config: Config, agent_key: str) -> list[dict[str, Any]]:
    """The agent's tokens (never the tokens themselves): id and when made, used, revoked."""
    agent = _configured(config, agent_key)
    return [
        {
            "id": row.id,
            "agent": row.agent_key,
            "created_at": _iso(row.created_at),
            "last_used_at": _iso(row.last_used_at),
            "revoked_at": _iso(row.revoked_at),
        }
        for row in apitokens.of_agent(agent.key)
    ]


def revoke(config: Config, agent_key: str, token_id: int | None) -> int:
    """Revoke one token of the agent (``None``: all); none to revoke is a usage error."""
    agent = _configured(config, agent_key)
    with write_transaction():
        count = apitokens.revoke(agent.key, token_id)
    if not count:
        what = "no active tokens" if token_id is None else f"no active token {token_id}"
        raise UsageError(f"agent {agent.key!r} has {what}")
    return count


def authenticate(config: Config, token: str) -> Agent | None:
    """The configured agent whose unrevoked token ``token`` is; None for any other."""
    if not token.startswith(PREFIX) or len(token) > 200:
        return None
    row = apitokens.active(token)
    if row is None:
        return None
    agent = config.agent(row.agent_key)
    if agent is None:  # removed from the config: the token is dead, even if they come back
        with write_transaction():
            apitokens.revoke(row.agent_key, row.id)
    return agent


def _configured(config: Config, key: str) -> Agent:
    agent = config.agent(key)
    if agent is None:
        known = ", ".join(a.key for a in config.agents) or "none configured"
        raise UsageError(f"no agent {key!r} in the config; known: {known}")
    return agent


def _iso(value: Any) -> str | None:
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"
