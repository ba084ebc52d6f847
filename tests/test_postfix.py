"""Mail through a real Postfix, configured exactly as the README shows: pipe, then LMTP.

Each test runs a private Postfix instance (tests/postfix.py) whose main.cf,
master.cf and transport map are the README's blocks, and ``mailgate serve`` as
the systemd unit in contrib/ starts it. A customer's mail goes through Postfix
with swaks; the ticket is found with ``mailgate tickets list --json`` and the
acknowledgement leaves through the same Postfix to the test relay.
"""

from __future__ import annotations

import copy
import grp
import json
import pwd
import shutil
import stat
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.postfix import (
    README,
    REPO,
    Layout,
    Postfix,
    Serve,
    as_mailgate,
    new_base,
    readme_blocks,
    recipe,
    requirements,
    run_shell,
)
from tests.relay import Relay
from tests.support import BASE, merge, to_toml, wait_for

CUSTOMER = "carla@customer.example"


def test_the_readme_quotes_every_contrib_postfix_file_verbatim() -> None:
    blocks = readme_blocks()
    files = sorted((REPO / "contrib" / "postfix").iterdir())
    assert files
    for path in files:
        name = str(path.relative_to(REPO))
        assert name in blocks, f"README.md does not quote {name} (<!-- {name} --> and a fence)"
        assert blocks[name] == path.read_text(), f"README.md's copy of {name} differs"
    for shell in ("shell: install", "shell: user", "shell: lmtp-socket-directory"):
        assert shell in blocks, f"README.md lost the step <!-- {shell} -->"
    assert "--mailbox" not in blocks["contrib/postfix/master.cf"]
    assert README.read_text().count("<!-- contrib/") == len(files)


@pytest.fixture(scope="session")
def mailgate_venv() -> Iterator[Path]:
    """mailgate installed the README's way (step 1), in a venv the user mailgate can run."""
    requirements()
    base = new_base("mg-venv-")
    layout = Layout(base, base / "venv")
    try:
        run_shell(recipe("shell: install", layout), base, "install")
        yield layout.venv
    finally:
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def layout(mailgate_venv: Path) -> Iterator[Layout]:
    base = new_base("mg-postfix-")
    try:
        yield Layout(base, mailgate_venv)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def install_config(layout: Layout, smtp_port: int, variant: str) -> None:
    """The admin's config: the example's mailboxes and teams, the README's Postfix keys.

    Staff addresses are in another domain than the mailboxes, so that Postfix relays
    their notices to the test relay instead of looking for local users.
    """
    data: dict[str, Any] = copy.deepcopy(BASE)
    for agent in data["agent"]:
        agent["emails"] = [e.replace("@example.org", "@staff.example") for e in agent["emails"]]
    for team in data["team"]:
        team["address"] = team["address"].replace("@example.org", "@staff.example")
    for name in ("contrib/postfix/mailgate.toml", f"contrib/postfix/mailgate-{variant}.toml"):
        merge(data, tomllib.loads(recipe(name, layout)))
    assert data["outbound"]["smtp"]["port"] == 25  # the README's; here the private smtpd
    data["outbound"]["smtp"]["port"] = smtp_port
    (layout.base / "mailgate.toml").write_text(to_toml(data))
    run_shell(recipe("shell: user", layout), layout.base, "user")


@pytest.fixture
def running(layout: Layout) -> Iterator[list[Any]]:
    """Whatever a test starts (Postfix, serve) is stopped, also when the test failed."""
    started: list[Any] = []
    yield started
    for thing in reversed(started):
        thing.stop()


def tickets(layout: Layout) -> list[dict[str, Any]]:
    listed = as_mailgate(layout, "tickets", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    result: list[dict[str, Any]] = json.loads(listed.stdout)
    return result


def messages_in(layout: Layout, number: int) -> list[dict[str, Any]]:
    shown = as_mailgate(layout, "tickets", "show", str(number), "--json")
    assert shown.returncode == 0, shown.stderr
    return [m for m in json.loads(shown.stdout)["messages"] if m["direction"] == "in"]


def mail_flows(layout: Layout, postfix: Postfix, serve: Serve, relay: Relay) -> None:
    """What an admin checks after following the README: ticket, acknowledgement, reply."""

    def diagnose() -> str:
        return f"--- postfix.log\n{postfix.log()}\n--- serve.log\n{serve.log()}"

    sent = postfix.swaks(
        "-f", CUSTOMER, "-t", "support@example.org",
        "--header", "Subject: Online banking is down",
        "--body", "Nothing works since 9:00.",
    )  # fmt: skip
    assert sent.returncode == 0, sent.stdout + sent.stderr

    try:
        ticket = wait_for(
            lambda: next(
                (t for t in tickets(layout) if t["subject"] == "Online banking is down"), None
            ),
            timeout=60,
        )
    except AssertionError:
        raise AssertionError("no ticket:\n" + diagnose()) from None
    assert ticket["requester"] == CUSTOMER

    def acknowledgement() -> Any:
        return next(
            (
                r
                for r in relay.received
                if r.rcpt_tos == [CUSTOMER] and ticket["tag"] in str(r.message["Subject"])
            ),
            None,
        )

    try:
        ack = wait_for(acknowledgement, timeout=60)
    except AssertionError:
        raise AssertionError("no acknowledgement left through Postfix:\n" + diagnose()) from None
    assert "mx.example.org" in " ".join(ack.message.get_all("Received", []))

    # Only the envelope names the ticket: the plus-address must survive Postfix.
    again = postfix.swaks(
        "-f", CUSTOMER, "-t", f"support+{ticket['number']}@example.org",
        "--header", "To: support@example.org",
        "--header", "Subject: One more thing",
        "--body", "The app shows error 503.",
    )  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    try:
        wait_for(lambda: len(messages_in(layout, ticket["number"])) == 2, timeout=60)
    except AssertionError:
        raise AssertionError("the reply did not reach its ticket:\n" + diagnose()) from None

    # No --mailbox in the pipe: the recipient decides, as it does for the listener.
    banking = postfix.swaks(
        "-f", CUSTOMER, "-t", "banking@example.org",
        "--header", "Subject: Transfer limit", "--body", "Please raise it.",
    )  # fmt: skip
    assert banking.returncode == 0, banking.stdout + banking.stderr
    try:
        wait_for(
            lambda: any(
                t["subject"] == "Transfer limit" and t["team"] == "online-banking"
                for t in tickets(layout)
            ),
            timeout=60,
        )
    except AssertionError:
        raise AssertionError("banking@ did not reach its mailbox:\n" + diagnose()) from None

    # Absolute paths: the pipe ran in Postfix's queue directory, serve in var/, this
    # command here; none of them made a database of its own.
    assert not (layout.postfix_spool / "var").exists()
    assert not (layout.var / "var").exists()

    # Postfix itself refuses an address that is not in the transport map.
    stranger = postfix.swaks("-f", CUSTOMER, "-t", "no-such-person@example.org", "--body", "hello?")
    assert stranger.returncode == 24, stranger.stdout
    assert "User unknown in local recipient table" in stranger.stdout


@pytest.mark.postfix
def test_mail_through_the_readme_postfix_pipe_becomes_an_acknowledged_ticket(
    layout: Layout, relay: Relay, running: list[Any]
) -> None:
    postfix = Postfix(
        layout,
        relay.port,
        transport="contrib/postfix/mailgate_transport",
        master="contrib/postfix/master.cf",
    )
    running.append(postfix)
    install_config(layout, postfix.port, "pipe")
    serve = Serve(layout)  # no listener: the outbox and the jobs, beside the pipe
    running.append(serve)

    mail_flows(layout, postfix, serve, relay)

    assert "relay=mailgate," in postfix.log()
    assert "smtp=off" in serve.log()  # serve beside the pipe: no listener of its own
    assert serve.stop() == 0
    assert "STOPPING=1" in serve.messages
    owners = {pwd.getpwuid(p.stat().st_uid).pw_name for p in layout.var.rglob("*")}
    assert owners == {"mailgate"}, "the pipe and serve left files mailgate cannot write"


@pytest.mark.postfix
def test_mail_through_the_readme_postfix_lmtp_socket_becomes_an_acknowledged_ticket(
    layout: Layout, relay: Relay, running: list[Any]
) -> None:
    postfix = Postfix(layout, relay.port, transport="contrib/postfix/mailgate_transport.lmtp")
    running.append(postfix)
    install_config(layout, postfix.port, "lmtp")
    run_shell(recipe("shell: lmtp-socket-directory", layout), layout.base, "socket directory")
    serve = Serve(layout)
    running.append(serve)

    socket_path = layout.postfix_spool / "mailgate" / "lmtp.sock"
    info = socket_path.stat()
    assert stat.S_ISSOCK(info.st_mode)
    assert stat.S_IMODE(info.st_mode) == 0o660
    assert grp.getgrgid(info.st_gid).gr_name == "postfix"
    assert pwd.getpwuid(info.st_uid).pw_name == "mailgate"
    assert "postfix" not in [g.gr_name for g in grp.getgrall() if "mailgate" in g.gr_mem], (
        "the recipe must work without making mailgate a member of postfix"
    )

    mail_flows(layout, postfix, serve, relay)

    assert "relay=mx.example.org[mailgate/lmtp.sock]" in postfix.log()
    assert serve.stop() == 0


@pytest.mark.postfix
def test_a_socket_group_mailgate_may_not_give_stops_serve_with_one_line_naming_the_key(
    layout: Layout, running: list[Any]
) -> None:
    """The README's LMTP config, but the socket directory made without set-group-ID postfix
    (and mailgate no member of postfix): serve must say so, not start half-working."""
    install_config(layout, 25, "lmtp")
    (layout.postfix_spool / "mailgate").mkdir(parents=True)
    shutil.chown(layout.postfix_spool / "mailgate", "mailgate", "mailgate")
    serve = Serve(layout, ready=False)
    running.append(serve)

    assert serve.process.wait(60) == 78
    lines = serve.log().strip().splitlines()
    assert len(lines) == 1, serve.log()
    assert lines[0].startswith("mailgate: config error: listener.socket_group: cannot give ")
    assert "to group postfix" in lines[0] and f"(in {layout.config})" in lines[0]
    assert "READY=1" not in serve.messages
