"""A real SMTP relay for tests: an aiosmtpd server that records what it receives.

It answers like a real relay: 250, or the 4xx/5xx a test asks for, per
recipient or for the whole transaction; it can also hold a transaction open
until the test lets it go (to kill a sender in the middle of a delivery).
"""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    content: bytes
    session: int

    @property
    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


@dataclass
class RelayHandler:
    received: list[Received] = field(default_factory=list)
    data_answer: str = "250 2.0.0 Ok: queued"
    rcpt_answers: dict[str, str] = field(default_factory=dict)
    hold: threading.Event | None = None
    arrived: threading.Event = field(default_factory=threading.Event)
    # Offered as Postfix does: the outbox then writes MAIL, RCPT and DATA at once.
    pipelining: bool = True
    # The connection carrying the Nth mail (counting every DATA) breaks before its answer.
    drop_at: set[int] = field(default_factory=set)
    data_seen: int = 0
    # Connections beyond this many (ever, 0: no limit) get 421 at the greeting.
    max_connections: int = 0
    connections: int = 0
    # aiosmtpd's Controller offers SMTPUTF8; a test can take it away.
    smtputf8: bool = True

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        session.host_name = hostname
        if not self.smtputf8:
            responses = [r for r in responses if "SMTPUTF8" not in r.upper()]
        return [responses[0], "250-PIPELINING", *responses[1:]] if self.pipelining else responses

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        answer = self.rcpt_answers.get(address.lower())
        if answer:
            return answer
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.data_seen += 1
        if self.data_seen in self.drop_at:
            # The connection breaks with the mail in the relay's hands, unanswered (and,
            # as a relay that crashed before queueing it, not kept).
            server.transport.abort()
            return "421 4.3.0 gone"
        if not self.data_answer.startswith("250"):
            return self.data_answer
        self.received.append(
            Received(
                envelope.mail_from,
                list(envelope.rcpt_tos),
                bytes(envelope.original_content),
                id(session),
            )
        )
        self.arrived.set()
        if self.hold is not None:
            # Keep the client waiting for its 250: the test kills it meanwhile.
            import asyncio

            while not self.hold.is_set():
                await asyncio.sleep(0.02)
        return self.data_answer

    def by_message_id(self, message_id: str) -> list[Received]:
        return [r for r in self.received if r.message["Message-ID"] == message_id]


@dataclass
class Relay:
    host: str
    port: int
    handler: RelayHandler

    @property
    def received(self) -> list[Received]:
        return self.handler.received


class _Refuse(asyncio.Protocol):
    """A connection over the relay's limit: 421 at the greeting, as Postfix answers it."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(b"421 4.7.0 Error: too many connections\r\n")  # type: ignore[attr-defined]
        transport.close()


class _Controller(Controller):
    """aiosmtpd's, refusing connections beyond ``handler.max_connections`` (when set)."""

    def factory(self) -> Any:
        handler: RelayHandler = self.handler
        handler.connections += 1
        if handler.max_connections and handler.connections > handler.max_connections:
            return _Refuse()
        return super().factory()


@pytest.fixture
def relay() -> Iterator[Relay]:
    handler = RelayHandler()
    port = free_port()
    controller = _Controller(handler, hostname="127.0.0.1", port=port, data_size_limit=50 * 2**20)
    controller.start()
    handler.connections = 0  # start() made one to see the server answer
    try:
        yield Relay("127.0.0.1", port, handler)
    finally:
        if handler.hold is not None:
            handler.hold.set()
        controller.stop()
