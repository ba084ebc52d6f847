"""The IMAP poller: fetch new mail by UID, ingest it, and only then mark it processed.

One thread per configured IMAP account (imapclient is synchronous). The rules
that keep mail from getting lost:

* fetch with ``BODY.PEEK[]``: nothing is marked read before it is stored;
* move/flag/delete a mail only after ``ingest()`` returned (duplicates and
  quarantined mail included — they are stored); when ingest raises
  ``TemporaryFailure`` the mail stays where it is and the round stops;
* remember UIDVALIDITY and the last UID (through the sink, in the database);
  a UIDVALIDITY change just means a full sweep — ingest is idempotent;
* every (re)connect sweeps the folder for unprocessed mail, and says so when
  mail fetched before is still there (the ledger and the server disagree);
* IDLE where the server has it, re-issued well before RFC 2177's 29 minutes,
  polling otherwise; a broken account is retried with backoff and never stops
  the other accounts or the SMTP listener.

Imports imapclient, the envelope, config, errors and logs; never intake or the database.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import imapclient
from imapclient.exceptions import IMAPClientError, LoginError

from mailgate.config import ImapAccount, read_password
from mailgate.envelope import Outcome
from mailgate.errors import ConfigError, TemporaryFailure
from mailgate.logs import event, redact
from mailgate.transports.oauth import access_token

log = logging.getLogger("mailgate.imap")

PROCESSED_KEYWORD = "$MailgateProcessed"
# RFC 2177 allows 29 minutes; a shorter renewal also notices a dead connection sooner
# (idle_check() cannot tell one from silence) and sweeps for anything missed.
IDLE_RENEW_SECONDS = 5 * 60
# Mail another gateway had claimed is looked at again this soon: had it died, its mail waits.
ELSEWHERE_RECHECK_SECONDS = 10
_MAX_BACKOFF = 300.0
_BATCH_BYTES = 32 * 1024 * 1024
_UIDS_PER_COMMAND = 500


class Sink(Protocol):
    """What the poller needs from the gateway (implemented by ``mailgate.app``)."""

    def ingest(self, raw: bytes, account: ImapAccount) -> Outcome: ...

    def position(self, account: ImapAccount) -> tuple[int, int]:
        """(uidvalidity, last uid) remembered for this account."""

    def record(
        self, account: ImapAccount, uidvalidity: int, uid: int, counts: dict[str, int]
    ) -> None:
        """Remember progress (0: none) and count outcomes by action (or 'failed')."""

    def note(self, account: ImapAccount, text: str) -> None:
        """Record the last problem of this account (shown by ``mailgate check``)."""

    def claim(self, account: ImapAccount, uidvalidity: int, uids: list[int]) -> list[int]:
        """Those of ``uids`` this process may store now (another gateway has the rest)."""

    def settle(
        self, account: ImapAccount, uidvalidity: int, claimed: list[int], done: list[int]
    ) -> None:
        """Let go of ``claimed``; ``done`` were marked processed on the server."""


@dataclass
class Round:
    fetched: int = 0
    stored: int = 0


def connect(account: ImapAccount) -> imapclient.IMAPClient:
    """Connect and log in; raises LoginError, IMAPClientError, OSError or ConfigError."""
    context = ssl.create_default_context()
    if not account.verify:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    client = imapclient.IMAPClient(
        account.host,
        port=account.port,
        ssl=account.security == "tls",
        ssl_context=context,
        timeout=30,
    )
    try:
        if account.security == "starttls":
            client.starttls(context)
        if account.auth == "xoauth2":
            client.oauth2_login(account.user, access_token(account))
        else:
            where = f"imap[{account.name}]"
            client.login(
                account.user, read_password(account.password_env, account.password_file, where)
            )
    except BaseException:
        with contextlib.suppress(Exception):
            client.shutdown()
        raise
    return client


def _expunged(exc: Exception) -> bool:
    """The server says another client removed some of the mails meanwhile."""
    return "EXPUNGEISSUED" in str(exc)


class Poller(threading.Thread):
    """Fetches one account until ``stop`` is set."""

    def __init__(
        self,
        account: ImapAccount,
        sink: Sink,
        stop: threading.Event,
        connector: Callable[[ImapAccount], imapclient.IMAPClient] = connect,
    ) -> None:
        super().__init__(name=f"imap-{account.name}", daemon=True)
        self.account = account
        self.sink = sink
        self.stopping = stop
        self.connector = connector
        self.client: imapclient.IMAPClient | None = None
        self.uidvalidity = 0
        self.last_uid = 0
        self.skipped: set[int] = set()  # UIDs whose ingest failed with a bug, this session
        self.elsewhere: set[int] = set()  # UIDs another gateway had claimed: looked at again

    # --- the outer loop: connect, work, reconnect with backoff ---------------------------

    def run(self) -> None:
        delay = 1.0
        while not self.stopping.is_set():
            started = time.monotonic()
            try:
                self.client = self.connector(self.account)
                event(log, "imap.connected", account=self.account.name)
                self.session()
            except LoginError as exc:
                self._problem(f"login failed: {_text(exc)}")
            except (IMAPClientError, OSError) as exc:  # OSError covers SSL errors and timeouts
                self._problem(f"connection failed: {_text(exc)}")
            except TemporaryFailure as exc:
                self._problem(f"not stored, mail stays on the server: {exc}")
            except ConfigError as exc:
                self._problem(str(exc))
            except Exception as exc:  # a bug here must not end the thread for good
                log.exception(
                    "imap poller failed", extra={"mailgate_fields": {"account": self.account.name}}
                )
                self._problem(f"internal error: {type(exc).__name__}: {exc}")
            finally:
                self._close()
            if time.monotonic() - started > 60:
                delay = 1.0  # the session worked for a while: reconnect quickly
            self.stopping.wait(delay)
            delay = min(delay * 2, _MAX_BACKOFF)

    def _problem(self, text: str) -> None:
        event(log, "imap.failed", logging.WARNING, account=self.account.name, error=redact(text))
        with contextlib.suppress(Exception):
            self.sink.note(self.account, redact(text))

    def _close(self) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        with contextlib.suppress(Exception):
            client.logout()
        with contextlib.suppress(Exception):
            client.shutdown()

    # --- one session ---------------------------------------------------------------------

    def session(self) -> None:
        client = self.client
        assert client is not None
        info = client.select_folder(self.account.folder)
        uidvalidity = int(info.get(b"UIDVALIDITY", 0))
        known_validity, last_uid = self.sink.position(self.account)
        if known_validity and known_validity != uidvalidity:
            event(
                log,
                "imap.uidvalidity_changed",
                logging.WARNING,
                account=self.account.name,
                old=known_validity,
                new=uidvalidity,
            )
            last_uid = 0
        self.uidvalidity, self.last_uid = uidvalidity, last_uid
        if self.account.after == "move" and not client.folder_exists(self.account.move_to):
            client.create_folder(self.account.move_to)
        self.sweep()
        with contextlib.suppress(Exception):  # the account works: `mailgate check` says so
            self.sink.record(self.account, self.uidvalidity, 0, {})
        use_idle = self.account.idle and client.has_capability("IDLE")
        while not self.stopping.is_set():
            if use_idle:
                self.idle_round()
            else:
                self.stopping.wait(self.account.poll_seconds)
                if self.stopping.is_set():
                    return
                client.noop()
            self.fetch_new()

    def idle_round(self) -> None:
        """Wait in IDLE until the server reports mail, the renew time, or stop."""
        client = self.client
        assert client is not None
        # Mail that arrived while we were fetching is announced in the answer to a command,
        # not during IDLE: ask once more right before idling, and look at what the server
        # said while IDLE was starting.
        _, responses = client.noop()
        if any(_is_new_mail(r) for r in responses):
            return
        client.idle()
        renew = ELSEWHERE_RECHECK_SECONDS if self.elsewhere else IDLE_RENEW_SECONDS
        deadline = time.monotonic() + renew
        try:
            if _announced_while_starting(client):
                return
            while not self.stopping.is_set() and time.monotonic() < deadline:
                responses = client.idle_check(timeout=1)
                if any(_is_new_mail(r) for r in responses):
                    return
        finally:
            client.idle_done()  # raises on a dead connection: the outer loop reconnects

    def sweep(self) -> None:
        """Everything unprocessed in the folder, also mail fetched before (a disagreement)."""
        client = self.client
        assert client is not None
        uids = sorted(client.search(self._unprocessed()))
        leftover = [u for u in uids if u <= self.last_uid]
        if leftover:
            event(
                log,
                "imap.ledger_mismatch",
                logging.WARNING,
                account=self.account.name,
                still_on_server=len(leftover),
                note="mail fetched before is still unprocessed in the folder; processing again",
            )
            with contextlib.suppress(Exception):
                self.sink.note(
                    self.account,
                    f"{len(leftover)} mail(s) fetched before were still "
                    f"unprocessed on the server; processed again",
                )
        self.process(uids)

    def fetch_new(self) -> None:
        client = self.client
        assert client is not None
        criteria = [*self._unprocessed(), "UID", f"{self.last_uid + 1}:*"]
        # "UID n:*" always includes the highest UID even when it is below n.
        uids = {u for u in client.search(criteria) if u > self.last_uid}
        if self.elsewhere:  # still there: the gateway that claimed it may have died
            uids.update(client.search([*self._unprocessed(), "UID", _uid_set(self.elsewhere)]))
            self.elsewhere.clear()
        self.process(sorted(uids))

    def _unprocessed(self) -> list[str]:
        if self.account.after == "flag":
            return ["NOT", "DELETED", "UNKEYWORD", PROCESSED_KEYWORD]
        return ["NOT", "DELETED"]

    def process(self, uids: list[int]) -> Round:
        """Fetch, store, then mark — batch by batch (one MOVE and one ledger update each)."""
        client = self.client
        assert client is not None
        result = Round()
        uids = [u for u in uids if u not in self.skipped]
        for batch in self._batches(uids):
            # Of several gateways polling this folder, one takes each mail.
            claimed = self.sink.claim(self.account, self.uidvalidity, batch)
            self.elsewhere.update(set(batch) - set(claimed))
            stored: list[int] = []
            counts: Counter[str] = Counter()
            try:
                fetched = client.fetch(claimed, ["BODY.PEEK[]"]) if claimed else {}
                for uid in claimed:
                    if self.stopping.is_set():
                        return result
                    raw = fetched.get(uid, {}).get(b"BODY[]")
                    if raw is None:
                        continue  # expunged meanwhile by another client
                    result.fetched += 1
                    try:
                        outcome = self.sink.ingest(bytes(raw), self.account)
                    except TemporaryFailure:
                        # Not stored: it stays where it is, and this round ends here.
                        counts["failed"] += 1
                        raise
                    except Exception:  # a bug with this one mail must not block the folder
                        log.exception(
                            "ingest failed",
                            extra={"mailgate_fields": {"account": self.account.name, "uid": uid}},
                        )
                        counts["failed"] += 1
                        self.skipped.add(uid)
                        continue
                    stored.append(uid)
                    counts[outcome.action] += 1
                    result.stored += 1
            finally:
                self._settle(stored, counts, claimed)
        return result

    def _batches(self, uids: list[int]) -> list[list[int]]:
        """Batches of at most ``batch_size`` mails and about 32 MiB: memory stays bounded."""
        if len(uids) <= 1:
            return [uids] if uids else []
        client = self.client
        assert client is not None
        # Ask in slices: one UID FETCH naming ten thousand UIDs is longer than servers
        # accept (Dovecot: "Too long argument"), and the folder would never drain.
        sizes: dict[int, Any] = {}
        for start in range(0, len(uids), _UIDS_PER_COMMAND):
            sizes.update(client.fetch(uids[start : start + _UIDS_PER_COMMAND], ["RFC822.SIZE"]))
        batches: list[list[int]] = []
        current: list[int] = []
        total = 0
        for uid in uids:
            size = int(sizes.get(uid, {}).get(b"RFC822.SIZE", 0))
            if current and (len(current) >= self.account.batch_size or total + size > _BATCH_BYTES):
                batches.append(current)
                current, total = [], 0
            current.append(uid)
            total += size
        if current:
            batches.append(current)
        return batches

    def _settle(self, stored: list[int], counts: Counter[str], claimed: list[int]) -> None:
        """Mark what was stored as processed, and tell the ledger; only stored mail moves."""
        marked: list[int] = []
        try:
            if stored:
                self.mark(stored)
                marked = stored
                self.last_uid = max(self.last_uid, *stored)
            if counts:
                with contextlib.suppress(TemporaryFailure):
                    self.sink.record(
                        self.account, self.uidvalidity, max(stored) if stored else 0, dict(counts)
                    )
        finally:  # a claim not let go here ends with this process's database session
            with contextlib.suppress(Exception):
                self.sink.settle(self.account, self.uidvalidity, claimed, marked)

    def mark(self, uids: list[int]) -> None:
        """Mark stored mail processed, step by step (COPY then delete without MOVE).

        When another client expunged some of them meanwhile, the server refuses the
        step with EXPUNGEISSUED: that step is done again one mail at a time (the gone
        ones are skipped), and no step that already worked is repeated — a COPY done
        twice would put the mail twice into the processed folder.
        """
        for step in self._mark_steps():
            try:
                step(uids)
            except IMAPClientError as exc:
                if not _expunged(exc):
                    raise
                for uid in uids:
                    try:
                        step([uid])
                    except IMAPClientError as single:
                        if not _expunged(single):
                            raise
                        event(log, "imap.gone", account=self.account.name, uid=uid)

    def _mark_steps(self) -> list[Callable[[list[int]], Any]]:
        client = self.client
        assert client is not None
        after = self.account.after
        if after == "flag":
            return [lambda u: client.add_flags(u, [b"\\Seen", PROCESSED_KEYWORD.encode()])]
        if after == "move":
            if client.has_capability("MOVE"):
                return [lambda u: client.move(u, self.account.move_to)]
            return [lambda u: client.copy(u, self.account.move_to), self._expunge]
        return [self._expunge]

    def _expunge(self, uids: list[int]) -> None:
        client = self.client
        assert client is not None
        client.add_flags(uids, [b"\\Deleted"])
        if client.has_capability("UIDPLUS"):
            client.uid_expunge(uids)
        else:
            client.expunge()


def _uid_set(uids: set[int]) -> str:
    return ",".join(str(u) for u in sorted(uids)[:_UIDS_PER_COMMAND])


def _announced_while_starting(client: imapclient.IMAPClient) -> bool:
    """EXISTS/RECENT that imaplib filed away while the IDLE command was being answered."""
    pending = getattr(getattr(client, "_imap", None), "untagged_responses", None)
    if not isinstance(pending, dict):
        return False
    found = False
    for key in ("EXISTS", "RECENT"):
        if pending.pop(key, None):
            found = True
    return found


def _is_new_mail(response: Any) -> bool:
    return (
        isinstance(response, tuple) and len(response) >= 2 and response[1] in (b"EXISTS", b"RECENT")
    )


def _text(exc: BaseException) -> str:
    text = str(exc)
    if isinstance(exc, LoginError) or "AUTHENTICATIONFAILED" in text:
        return text.replace("b'", "").replace("'", "")
    return text or type(exc).__name__


def check(account: ImapAccount) -> str:
    """Log in and look at the folder: a one-line summary, or raises with the reason."""
    client = connect(account)
    try:
        info = client.select_folder(account.folder, readonly=True)
        count = int(info.get(b"EXISTS", 0))
        idle = "IDLE" if client.has_capability("IDLE") else "no IDLE (polling)"
        where = f"{account.user}@{account.host}:{account.port} {account.folder}"
        return f"{where}: {count} message(s), {idle}"
    finally:
        with contextlib.suppress(Exception):
            client.logout()
