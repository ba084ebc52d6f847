"""The IMAP poller against a real Dovecot: nothing moved before it is stored, nothing twice."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest

from mailgate.context import Context
from mailgate.store import ledger
from mailgate.store import models as m
from tests.conftest import open_gateway
from tests.dovecot import ImapUser
from tests.relay import free_port
from tests.support import compose, config_data, imap_account, load_config, wait_for, write_config

pytestmark = pytest.mark.dovecot


def account(user: ImapUser, tmp_path: Path, **extra: Any) -> dict[str, Any]:
    return imap_account(user.host, user.port, user.user, user.password, tmp_path, **extra)


def gateway_with(
    tmp_path: Path, database_url: str, accounts: list[dict[str, Any]], **overrides: Any
) -> Context:
    data = config_data(tmp_path, database_url, {"imap": accounts, **overrides})
    return open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))


def tickets() -> int:
    return int(m.Ticket.select().count())


def test_new_mail_becomes_a_ticket_within_seconds_and_is_moved_after(
    imap_user: ImapUser, tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    imap_user.append(compose(subject="waiting before start"))
    ctx = gateway_with(tmp_path, database_url, [account(imap_user, tmp_path)])
    serve_in_thread(ctx, smtp=False)
    wait_for(lambda: tickets() == 1)
    wait_for(lambda: imap_user.count("Processed") == 1)
    started = time.monotonic()
    imap_user.append(compose(subject="arrives during IDLE"))
    wait_for(lambda: tickets() == 2, timeout=5)
    assert time.monotonic() - started < 3
    wait_for(lambda: imap_user.count("INBOX") == 0)
    (row,) = ledger.status(ctx.config)
    assert (row["fetched"], row["ingested"], row["failed"]) == (2, 2, 0)
    assert m.Receipt.select().where(m.Receipt.source == "imap").count() == 2


def test_polling_without_idle(
    imap_user: ImapUser, tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    ctx = gateway_with(
        tmp_path,
        database_url,
        [account(imap_user, tmp_path, idle=False, poll_seconds=1, after="delete")],
    )
    serve_in_thread(ctx, smtp=False)
    imap_user.append(compose())
    wait_for(lambda: tickets() == 1, timeout=10)
    wait_for(lambda: imap_user.count("INBOX") == 0)


def test_flag_mode_keeps_mail_and_a_uidvalidity_change_creates_nothing_twice(
    imap_user: ImapUser, tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    mails = [compose(subject=f"mail {i}") for i in range(3)]
    for raw in mails:
        imap_user.append(raw, folder="Support")
    ctx = gateway_with(
        tmp_path, database_url, [account(imap_user, tmp_path, folder="Support", after="flag")]
    )
    running = serve_in_thread(ctx, smtp=False)
    wait_for(lambda: tickets() == 3)
    wait_for(lambda: all(b"$MailgateProcessed" in f for f in imap_user.flags("Support")))
    assert imap_user.count("Support") == 3
    running.stop()
    before = ledger.position("support-inbox")
    # The folder is recreated: same mails, new UIDVALIDITY, no flags.
    client = imap_user.client()
    client.delete_folder("Support")
    client.logout()
    for raw in mails:
        imap_user.append(raw, folder="Support")
    serve_in_thread(ctx, smtp=False)
    wait_for(lambda: ledger.status(ctx.config)[0]["duplicate"] == 3)
    assert tickets() == 3
    assert ledger.position("support-inbox")[0] != before[0]


def test_a_broken_account_does_not_stop_the_others(
    imap_user: ImapUser,
    dovecot_server: Any,
    tmp_path: Path,
    database_url: str,
    serve_in_thread: Any,
) -> None:
    wrong = dovecot_server.add_user()
    wrong.password = "not-the-password"
    accounts = [account(wrong, tmp_path, name="broken"), account(imap_user, tmp_path, name="good")]
    # The listener runs too, on a free port: 2525 may be taken by a gateway on this machine.
    ctx = gateway_with(tmp_path, database_url, accounts, listener={"port": free_port()})
    serve_in_thread(ctx, smtp=True)
    imap_user.append(compose())
    wait_for(lambda: tickets() == 1)
    broken = wait_for(
        lambda: next(
            (r for r in ledger.status(ctx.config) if r["name"] == "broken" and r["last_error"]),
            None,
        )
    )
    assert "login failed" in broken["last_error"]


def test_mail_that_cannot_be_stored_stays_on_the_server(
    imap_user: ImapUser, tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    blocker = tmp_path / "store"
    blocker.write_text("a file where the blob directory should be")
    ctx = gateway_with(
        tmp_path,
        database_url,
        [account(imap_user, tmp_path)],
        storage={"blob_dir": str(blocker / "blobs")},
    )
    imap_user.append(compose())
    serve_in_thread(ctx, smtp=False)
    wait_for(lambda: ledger.status(ctx.config)[0]["failed"] >= 1)
    assert imap_user.count("INBOX") == 1 and imap_user.count("Processed") == 0
    assert tickets() == 0
    # The disk problem is fixed: the next attempt stores it, exactly once.
    blocker.unlink()
    blocker.mkdir()
    wait_for(lambda: tickets() == 1, timeout=30)
    wait_for(lambda: imap_user.count("INBOX") == 0)


def test_mail_fetched_before_but_still_there_is_reported_and_processed(
    imap_user: ImapUser, tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    imap_user.append(compose())
    ctx = gateway_with(tmp_path, database_url, [account(imap_user, tmp_path)])
    client = imap_user.client()
    info = client.select_folder("INBOX")
    client.logout()
    # The ledger says everything up to UID 5 was fetched, yet UID 1 is still in the folder.
    ledger.record("support-inbox", int(info[b"UIDVALIDITY"]), 5, {"created": 1})
    serve_in_thread(ctx, smtp=False)
    wait_for(lambda: tickets() == 1)
    status = wait_for(lambda: ledger.status(ctx.config)[0]["last_error"])
    assert "fetched before were still unprocessed" in status


def test_check_logs_into_each_account(
    imap_user: ImapUser, dovecot_server: Any, tmp_path: Path, database_url: str
) -> None:
    from mailgate.admin.check import checks

    wrong = dovecot_server.add_user()
    wrong.password = "nope"
    ctx = gateway_with(
        tmp_path,
        database_url,
        [account(imap_user, tmp_path, name="good"), account(wrong, tmp_path, name="bad")],
    )
    results = {c.name: c for c in checks(ctx.config)}
    assert results["imap good"].ok and "message(s)" in results["imap good"].detail
    assert not results["imap bad"].ok
    assert results["database"].ok and results["templates"].ok and results["outbound"].ok


def test_a_big_backlog_is_fetched_in_slices_the_server_accepts(
    imap_user: ImapUser,
    tmp_path: Path,
    database_url: str,
    serve_in_thread: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from mailgate.transports import imap as imap_transport

    # Real folders with tens of thousands of mails overflow one command; here a small
    # slice size makes 40 mails take the same path.
    monkeypatch.setattr(imap_transport, "_UIDS_PER_COMMAND", 7)
    client = imap_user.client()
    for i in range(40):
        client.append("INBOX", compose(subject=f"backlog {i}", sender=f"b{i}@customer.example"))
    client.logout()
    ctx = gateway_with(tmp_path, database_url, [account(imap_user, tmp_path, batch_size=6)])
    serve_in_thread(ctx, smtp=False)
    wait_for(lambda: tickets() == 40, timeout=60)
    wait_for(lambda: imap_user.count("INBOX") == 0)


# The ledger is the same code on both databases; Dovecot's delay after a failed login
# makes this test slow, so it runs once.
@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_check_fails_while_serve_cannot_reach_an_account_and_recovers_after(
    imap_user: ImapUser, tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    from mailgate.admin.check import checks

    settings = account(imap_user, tmp_path)
    password_file = Path(settings["password_file"])
    password_file.write_text("changed by someone\n")
    ctx = gateway_with(tmp_path, database_url, [settings])
    serve_in_thread(ctx, smtp=False)
    wait_for(lambda: ledger.status(ctx.config)[0]["last_error"])
    results = {c.name: c for c in checks(ctx.config)}
    ledger_check = results["imap ledger support-inbox"]
    assert not ledger_check.ok
    assert "serve failed at" in ledger_check.detail and "login failed" in ledger_check.detail
    assert "never worked" in ledger_check.detail
    # The admin fixes the password; serve's next attempt works and check turns green.
    password_file.write_text(imap_user.password + "\n")
    wait_for(lambda: not ledger.status(ctx.config)[0]["failing"], timeout=30)
    results = {c.name: c for c in checks(ctx.config)}
    assert results["imap ledger support-inbox"].ok
    assert results["imap ledger support-inbox"].detail.startswith("working; last problem at")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("after", ["move", "flag"])
def test_mail_another_client_removed_meanwhile_does_not_stop_the_rest(
    imap_user: ImapUser, tmp_path: Path, database_url: str, after: str
) -> None:
    import threading

    from mailgate.transports.imap import Poller, connect

    for i in range(3):
        imap_user.append(compose(subject=f"mail {i}"))
    ctx = gateway_with(tmp_path, database_url, [account(imap_user, tmp_path, after=after)])
    poller = Poller(ctx.config.imap[0], sink=None, stop=threading.Event())  # type: ignore[arg-type]
    poller.client = connect(ctx.config.imap[0])
    poller.client.select_folder("INBOX")
    if after == "move":
        poller.client.create_folder("Processed")  # serve creates it when the session opens
    uids = sorted(poller.client.search("ALL"))
    # Another client (a colleague's mail program) deletes the middle one before we mark.
    # Dovecot takes the batch anyway; servers that refuse it with EXPUNGEISSUED get the
    # step again one mail at a time. Either way the others end up marked, each once.
    other = imap_user.client()
    other.select_folder("INBOX")
    other.delete_messages([uids[1]])
    other.expunge()
    other.logout()
    poller.mark(uids)
    poller.client.logout()
    if after == "move":
        assert imap_user.count("Processed") == 2  # each once: nothing copied twice
        assert imap_user.count("INBOX") == 0
    else:
        assert all(b"$MailgateProcessed" in f for f in imap_user.flags("INBOX"))
