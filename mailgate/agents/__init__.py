"""Agents at work: who an agent is, and what their mail and their CLI verbs do.

The front door. ``identity.py`` decides whether a mail from an agent's address
is the agent's (nobody becomes an agent by writing a From header); ``mail.py``
reads and carries out an authentic agent's mail; ``commands.py`` checks and
applies its commands; ``verbs.py`` holds the verbs the mail and the CLI share
(reply, note, resolve, merge, move to a team), so both leave the same events and
notices. Ticket state changes go through ``mailgate.lifecycle``.
"""

from mailgate.agents.commands import check_commands, run_commands
from mailgate.agents.identity import Identity, identify, note_address
from mailgate.agents.mail import (
    AgentMail,
    asks_for_queue,
    describe,
    handle_mail,
    intent_of,
    message_kind,
    read_mail,
)
from mailgate.agents.verbs import actor_of, merge, note, reply, resolve, set_team

__all__ = [
    "AgentMail",
    "Identity",
    "actor_of",
    "asks_for_queue",
    "check_commands",
    "describe",
    "handle_mail",
    "identify",
    "intent_of",
    "merge",
    "message_kind",
    "note",
    "note_address",
    "read_mail",
    "reply",
    "resolve",
    "run_commands",
    "set_team",
]
