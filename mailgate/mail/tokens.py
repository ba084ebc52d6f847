"""Signed reply addresses: ``support+482913-k3v9x2mq7d4p@example.org``.

Notices to an agent carry a Reply-To whose plus-part holds the ticket number
and an HMAC bound to that agent and that ticket. A reply that comes back to
such an address proves it answers a notice we sent to that agent — a forged
From header cannot produce one. Customer notices carry the number and an HMAC
bound to the ticket's requester (``sign_requester``): a reply to it answers a
notice we sent to the requester, which is what lets a reply add Cc'd people.

Pure: imports only the standard library.
"""

from __future__ import annotations

import base64
import hmac
from dataclasses import dataclass

_TOKEN_CHARS = 16


def _token(mac: bytes) -> str:
    """The first ``_TOKEN_CHARS`` of the MAC in lower-case base32. Base32 encodes every 5
    bytes on their own (8 characters), so the 10 bytes that make the 16 characters are
    encoded alone: the same token, a third of the work (``b32encode`` is pure Python)."""
    return base64.b32encode(mac[: _TOKEN_CHARS * 5 // 8]).decode("ascii").lower()


@dataclass(frozen=True)
class ReplyAddress:
    number: int
    token: str  # '' for an unsigned (customer) reply address
    note: bool = False  # support+note-482913@…: the reply is an internal note


def sign(secret: bytes, agent_key: str, number: int) -> str:
    mac = hmac.digest(secret, f"agent:{agent_key}:ticket:{number}".encode(), "sha256")
    return _token(mac)


def verify(secret: bytes, agent_key: str, number: int, token: str) -> bool:
    return bool(token) and hmac.compare_digest(sign(secret, agent_key, number), token.lower())


def sign_requester(secret: bytes, requester_id: int, number: int) -> str:
    """The token of the reply address in notices to a ticket's requester (its own message)."""
    text = f"requester:{requester_id}:ticket:{number}"
    mac = hmac.digest(secret, text.encode(), "sha256")
    return _token(mac)


def verify_requester(secret: bytes, requester_id: int, number: int, token: str) -> bool:
    expected = sign_requester(secret, requester_id, number)
    return bool(token) and hmac.compare_digest(expected, token.lower())


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


# --- rating addresses: support+rate-482913-good-<hmac>@… ------------------------------------

RATINGS = ("good", "bad")


@dataclass(frozen=True)
class RatingAddress:
    number: int
    rating: str  # good | bad
    token: str


def sign_rating(secret: bytes, number: int, rating: str) -> str:
    """The HMAC of a rating link: the same scheme as agents' reply addresses, its own message."""
    mac = hmac.digest(secret, f"rate:{number}:{rating}".encode(), "sha256")
    return _token(mac)


def verify_rating(secret: bytes, address: RatingAddress) -> bool:
    return bool(address.token) and hmac.compare_digest(
        sign_rating(secret, address.number, address.rating), address.token.lower()
    )


def rating_address(mailbox_address: str, number: int, rating: str, token: str) -> str:
    local, _, domain = mailbox_address.partition("@")
    return f"{local}+rate-{number}-{rating}-{token}@{domain}"


def parse_rating(local_part: str) -> RatingAddress | None:
    """The plus-part of a rating address (``support+rate-482913-good-<token>``), or None.

    Anything shaped like one is returned, tampered or not: ``verify_rating`` decides.
    """
    _, plus, detail = local_part.lower().partition("+")
    if not plus or not detail.startswith("rate-"):
        return None
    digits, _, rest = detail[5:].partition("-")
    rating, _, token = rest.partition("-")
    if not digits.isdigit() or len(digits) > 18 or len(token) > 64 or not token.isalnum():
        return RatingAddress(0, rating[:10], "")  # a rating address, but no valid one
    return RatingAddress(int(digits), rating[:10], token)
