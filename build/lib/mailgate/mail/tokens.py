"""Signed reply addresses: ``support+482913-k3v9x2mq7d4p@example.org``.

Notices to an agent carry a Reply-To whose plus-part holds the ticket number
and an HMAC bound to that agent and that ticket. A reply that comes back to
such an address proves it answers a notice we sent to that agent — a forged
From header cannot produce one. Customer notices carry only the number
(``support+482913@…``): that finds the ticket, and proves nothing.

Pure: imports only the standard library.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

_TOKEN_CHARS = 16


@dataclass(frozen=True)
class ReplyAddress:
    number: int
    token: str  # '' for an unsigned (customer) reply address
    note: bool = False  # support+note-482913@…: the reply is an internal note


def sign(secret: bytes, agent_key: str, number: int) -> str:
    mac = hmac.new(secret, f"agent:{agent_key}:ticket:{number}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode("ascii").lower()[:_TOKEN_CHARS]


def verify(secret: bytes, agent_key: str, number: int, token: str) -> bool:
    return bool(token) and hmac.compare_digest(sign(secret, agent_key, number), token.lower())


def reply_address(mailbox_address: str, number: int, token: str = "", *, note: bool = False) -> str:
    local, _, domain = mailbox_address.partition("@")
    detail = f"{'note-' if note else ''}{number}{'-' + token if token else ''}"
    return f"{local}+{detail}@{domain}"


def parse_detail(local_part: str) -> ReplyAddress | None:
    """The plus-part of a local part (``support+note-482913-abc``), or None."""
    _, plus, detail = local_part.lower().partition("+")
    if not plus:
        return None
    note = detail.startswith("note-")
    if note:
        detail = detail[5:]
    digits, _, token = detail.partition("-")
    if not digits.isdigit() or len(digits) > 18:
        return None
    if token and not (token.isalnum() and len(token) <= 64):
        return None
    return ReplyAddress(int(digits), token, note)
