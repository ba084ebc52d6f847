"""Who may act as an agent by Authentication-Results: only our MTA's DKIM/DMARC verdict counts.

Each mail goes through the pipe (`mailgate ingest -`, as Postfix hands mail on), from
a forged or a genuine agent, with the trace headers a real delivery would carry.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from mailgate.context import Context
from mailgate.intake import ingest
from mailgate.store import views as queries
from tests.support import compose, via_our_mta

TRUSTED = {"security": {"trusted_authserv_ids": ["mx.example.org"]}}
RECEIVED = (
    "Received: from mail.example.org (mail.example.org [192.0.2.25])\r\n"
    "\tby mx.example.org (Postfix) with ESMTPS id 4XyzAB; Mon, 23 Nov 2026 09:00:00 +0000\r\n"
)


def ticket_with_a_command_from_alice(ctx: Context, shape: str, results: str) -> str:
    """A customer ticket, then "Alice" sets #priority high through the pipe; the priority after."""
    created = ingest(ctx, compose(), source="smtp")
    assert created.ticket is not None
    mail = compose(
        sender="Alice Smith <alice@example.org>",
        subject=f"Re: [EB#{created.ticket}] The mobile online banking is down",
        body="#priority high\nOn it.",
    )
    ar = f"Authentication-Results: {results}\r\n".encode()
    raw = {
        "above our Received": via_our_mta(mail, results),
        "below our Received": RECEIVED.encode() + ar + mail,  # written by the sender
        "no Received at all": ar + mail,
        "forged below ours": via_our_mta(
            ar + mail, "mx.example.org; dkim=none; spf=pass smtp.mailfrom=alice@example.org"
        ),
    }[shape]
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(ctx.config.path), "ingest", "-"],
        input=raw,
        capture_output=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    ticket = queries.ticket_detail(ctx.config, queries.ticket(created.ticket))
    return str(ticket["priority"])


@pytest.mark.config(TRUSTED)
@pytest.mark.parametrize(
    "results",
    [
        "mx.example.org; dkim=pass header.d=example.org",
        "mx.example.org (Postfix); dkim=fail header.d=example.org; dmarc=pass header.from=example.org",
    ],
)
def test_dkim_or_dmarc_pass_added_by_our_mta_authenticates_the_agent(
    ctx: Context, results: str
) -> None:
    assert ticket_with_a_command_from_alice(ctx, "above our Received", results) == "high"


@pytest.mark.config(TRUSTED)
def test_spf_pass_alone_never_authenticates_an_agent(ctx: Context) -> None:
    results = "mx.example.org; spf=pass smtp.mailfrom=alice@example.org; dkim=none"
    assert ticket_with_a_command_from_alice(ctx, "above our Received", results) == "normal"


@pytest.mark.config(TRUSTED)
@pytest.mark.parametrize("shape", ["below our Received", "no Received at all", "forged below ours"])
def test_authentication_results_the_sender_wrote_do_not_count(ctx: Context, shape: str) -> None:
    """Below our MTA's Received header (or with none at all) the header is the sender's
    word, even with our server's name and a perfect DKIM pass in it."""
    results = "mx.example.org; dkim=pass header.d=example.org; dmarc=pass header.from=example.org"
    assert ticket_with_a_command_from_alice(ctx, shape, results) == "normal"
