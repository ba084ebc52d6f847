"""Two gateways polling one IMAP mailbox (real Dovecot, real `serve` processes, PostgreSQL).

One of them claims each mail; the other skips it: every mail becomes one ticket,
is stored once and moved once. A claim left by a process that died is taken over.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailgate import store
from mailgate.store import models as m
from tests.conftest import open_gateway
from tests.dovecot import ImapUser
from tests.support import compose, config_data, imap_account, load_config, wait_for, write_config

pytestmark = [pytest.mark.dovecot, pytest.mark.postgres]
MAILS = 40


@pytest.fixture
def gateways(tmp_path: Path, database_url: str) -> Iterator[Any]:
    """Start `mailgate serve --no-smtp` processes on one database; all stopped at the end."""
    started: list[subprocess.Popen[bytes]] = []

    def start(user: ImapUser, **account: Any) -> subprocess.Popen[bytes]:
        index = len(started)
        box = imap_account(user.host, user.port, user.user, user.password, tmp_path, **account)
        data = config_data(tmp_path, database_url, {"imap": [box]})
        path = write_config(tmp_path / f"gateway{index}.toml", data)
        run = [sys.executable, "-m", "mailgate", "--config", str(path)]
        subprocess.run([*run, "db", "upgrade"], check=True, capture_output=True, timeout=60)
        log = (tmp_path / f"serve{index}.log").open("ab")
        process = subprocess.Popen([*run, "serve", "--no-smtp"], stdout=log, stderr=log)
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(15)
    store.close()


def watch(tmp_path: Path, database_url: str) -> Any:
    """The test's own view of the shared database."""
    return open_gateway(
        load_config(write_config(tmp_path / "watch.toml", config_data(tmp_path, database_url)))
    )


def test_two_gateways_on_one_mailbox_store_and_move_each_mail_once(
    imap_user: ImapUser, tmp_path: Path, database_url: str, gateways: Any
) -> None:
    watch(tmp_path, database_url)
    gateways(imap_user)
    gateways(imap_user)
    time.sleep(1.5)  # both are connected and idling: new mail reaches both at once
    for i in range(MAILS):
        imap_user.append(compose(sender=f"c{i}@customer.example", subject=f"Question {i}"))
    wait_for(lambda: imap_user.count("Processed") >= MAILS and imap_user.count("INBOX") == 0, 60)
    time.sleep(1)  # a late second move or ingest would show now
    assert imap_user.count("Processed") == MAILS
    assert m.Ticket.select().count() == MAILS
    assert m.Receipt.select().count() == MAILS
    row = m.ImapState.get(m.ImapState.name == "support-inbox")  # both gateways' ledger
    assert (row.fetched, row.ingested, row.duplicate, row.failed) == (MAILS, MAILS, 0, 0)


@pytest.mark.parametrize("idle", [False, True], ids=["polling", "idle"])
def test_a_claim_left_by_a_dead_process_is_taken_over(
    imap_user: ImapUser, tmp_path: Path, database_url: str, gateways: Any, idle: bool
) -> None:
    ctx = watch(tmp_path, database_url)
    imap_user.append(compose(subject="Claimed by a process that dies"))
    client = imap_user.client()
    uidvalidity = int(client.select_folder("INBOX")[b"UIDVALIDITY"])
    (uid,) = client.search("ALL")
    client.logout()
    # Another gateway process claims the mail (through the same store function) and hangs.
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys\n"
            "from pathlib import Path\n"
            "from mailgate.config import load\n"
            "from mailgate.context import open_context\n"
            "from mailgate.store import imapclaims\n"
            "open_context(load(Path(sys.argv[1])))\n"
            "print(imapclaims.claim('support-inbox', int(sys.argv[2]), [int(sys.argv[3])]),"
            " flush=True)\n"
            "sys.stdin.read()\n",
            str(ctx.config.path),
            str(uidvalidity),
            str(uid),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == f"[{uid}]".encode()
        gateways(imap_user, idle=idle, poll_seconds=1)
        time.sleep(4)  # several rounds: the live claim is respected
        assert imap_user.count("INBOX") == 1 and m.Ticket.select().count() == 0
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(10)
    # Polling looks again within a second; IDLE within ELSEWHERE_RECHECK_SECONDS.
    wait_for(lambda: m.Ticket.select().count() == 1, 30)
    wait_for(lambda: imap_user.count("INBOX") == 0 and imap_user.count("Processed") == 1)
