"""The mail of an outbox row as the outbox will send it.

A notice is queued as a snapshot and composed when it is sent
(``mailgate.notices.snapshot``); a test that reads a notice before delivering it
composes it with the gateway the test opened last (``conftest.open_gateway``).
"""

from __future__ import annotations

from typing import Any

from mailgate.context import Context
from mailgate.notices import mail_of

OPENED: list[Context] = []


def opened(ctx: Context) -> Context:
    OPENED[:] = [ctx]
    return ctx


def mail(item: Any) -> bytes:
    """``item``: an ``OutboxItem`` (or its content); its mail, composed if it is a snapshot."""
    content = bytes(getattr(item, "content", item))
    assert OPENED, "no gateway opened in this test"
    return mail_of(OPENED[-1], content)
