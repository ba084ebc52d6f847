"""A running desk for the tests of issue 13: `mailgate serve`'s listener, a real relay.

Mail goes in over SMTP to the listener as an MTA hands it over (``Desk.send``), or
through the pipe (``Desk.pipe``: ``mailgate ingest -`` in a process of its own); the
outbox delivers to the aiosmtpd relay of ``tests/relay.py`` (``Desk.deliver``), and
the tests read what each person found in their inbox.
"""

from __future__ import annotations

import email.utils
import re
import smtplib
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from mailgate import outbox
from mailgate.context import Context
from mailgate.store import models as m
from mailgate.store import views as queries
from tests.conftest import open_gateway
from tests.relay import Received, Relay
from tests.support import config_data, load_config, merge, write_config

# Claimed counts as waiting: serve's outbox job holds a batch claimed while it composes
# the notices' mail, before it marks the first one sending.
WAITING = ("queued", "claimed", "sending")


class Desk:
    def __init__(self, ctx: Context, relay: Relay, config_path: Path, port: int) -> None:
        self.ctx, self.relay, self.config_path, self.port = ctx, relay, config_path, port
        self.seen = 0

    def send(
        self, raw: bytes, mail_from: str, rcpt: list[str] | None = None
    ) -> tuple[int, str]:
        """Hand ``raw`` to the listener (envelope recipients: its To and Cc); the answer."""
        parsed = email.message_from_bytes(raw)
        if rcpt is None:
            headers = [str(h) for n in ("To", "Cc") for h in parsed.get_all(n, [])]
            rcpt = [a for _, a in email.utils.getaddresses(headers)]
        with smtplib.SMTP("127.0.0.1", self.port, timeout=30) as client:
            client.ehlo("mx.customer.example")
            client.mail(mail_from)
            for address in rcpt:
                client.rcpt(address)
            code, answer = client.data(raw)
        return code, answer.decode()

    def pipe(self, raw: bytes, *args: str) -> subprocess.CompletedProcess[str]:
        """``mailgate ingest -`` as Postfix's pipe runs it: the mail on standard input."""
        return self.cli("ingest", *args, "-", input=raw)

    def cli(self, *args: str, input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [sys.executable, "-m", "mailgate", "--config", str(self.config_path), *args],
            input=input,
            capture_output=True,
            timeout=120,
        )
        return subprocess.CompletedProcess(
            result.args, result.returncode, result.stdout.decode(), result.stderr.decode()
        )

    def deliver(self) -> list[Received]:
        """Send what the outbox holds to the relay; the mails that arrived since last time.

        Serve delivers too (a new mail kicks its outbox job): wait until every outbox
        item is handed over and the relay holds one mail per item sent.
        """
        deadline = time.monotonic() + 20
        while True:
            outbox.deliver(self.ctx.config)
            waiting = m.OutboxItem.select().where(m.OutboxItem.status.in_(WAITING)).count()
            sent = m.OutboxItem.select().where(m.OutboxItem.status == "sent").count()
            if not waiting and sent == len(self.relay.received):
                break
            assert time.monotonic() < deadline, f"outbox: {waiting} waiting, {sent} sent"
            time.sleep(0.05)
        new = self.relay.received[self.seen :]
        self.seen += len(new)
        return list(new)

    def ticket(self, number: int) -> dict[str, Any]:
        return queries.ticket_detail(self.ctx.config, queries.ticket(number))


def number_of(answer: str) -> int:
    """The ticket number in the listener's answer (``250 2.0.0 OK created ticket [EB#12]``)."""
    found = re.search(r"#(\d+)\]", answer)
    assert found, answer
    return int(found.group(1))


def to(mails: list[Received], address: str, kind: str | None = None) -> list[EmailMessage]:
    """The mails among ``mails`` that reached ``address`` (of one notice kind)."""
    return [
        r.message
        for r in mails
        if address in r.rcpt_tos and (kind is None or r.message["X-Mailgate-Notice"] == kind)
    ]


def plain(message: EmailMessage) -> str:
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content()).replace("\r\n", "\n")  # type: ignore[attr-defined]


def kinds(mails: list[Received]) -> list[tuple[str, str]]:
    """(notice kind, recipient) of every mail, sorted: what everybody got, at a glance."""
    return sorted(
        (str(r.message["X-Mailgate-Notice"]), rcpt) for r in mails for rcpt in r.rcpt_tos
    )


def _in(value: Any, tmp_path: Path) -> Any:
    """``{tmp}`` in the test's config overrides: its own temporary directory."""
    if isinstance(value, str):
        return value.replace("{tmp}", str(tmp_path))
    if isinstance(value, dict):
        return {k: _in(v, tmp_path) for k, v in value.items()}
    if isinstance(value, list):
        return [_in(v, tmp_path) for v in value]
    return value


@pytest.fixture
def desk(
    tmp_path: Path, database_url: str, relay: Relay, serve_in_thread: Any,
    request: pytest.FixtureRequest,
) -> Iterator[Desk]:  # fmt: skip
    """The gateway as serve runs it (listener, no IMAP); the test delivers the outbox."""
    data = config_data(
        tmp_path,
        database_url,
        {
            "listener": {"port": 0},  # any free port: the one bound is read back
            "jobs": {"outbox_seconds": 3600, "due_seconds": 3600},
            "outbound": {
                "transport": "smtp",
                "smtp": {"host": relay.host, "port": relay.port, "security": "none", "timeout": 5},
            },
        },
    )
    marker = request.node.get_closest_marker("config")
    if marker:
        merge(data, _in(marker.args[0], tmp_path))
    path = write_config(tmp_path / "mailgate.toml", data)
    ctx = open_gateway(load_config(path))
    running = serve_in_thread(ctx, imap=False)
    server = running.gateway.server
    assert server is not None and server.sockets
    yield Desk(ctx, relay, path, int(server.sockets[0].getsockname()[1]))
