"""A replay harness: the same mails through 1…N real `mailgate serve` processes on one PostgreSQL.

Conversations (an original and up to three replies, each reply naming the whole
chain in In-Reply-To/References) are interleaved so that a reply follows its
parent within a place or two: with several processes it arrives while the parent
is still being processed by another one. The dispatcher sends each mail over
SMTP from a thread of its own and moves on only once the mail's receipt exists,
so the arrival order is the list's order whatever the number of processes; the
result must be exactly what one process makes of it.

Used by ``tests/test_scale_out.py`` and ``bench/scale_out.py``.
"""

from __future__ import annotations

import random
import smtplib
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.relay import free_port
from tests.support import compose, config_data, wait_listening, write_config

TOPICS = ["Card blocked", "Transfer stuck", "App crashes", "Statement missing", "Wrong fee"]


@dataclass(frozen=True)
class Mail:
    message_id: str
    conversation: int
    raw: bytes

    @property
    def is_reply(self) -> bool:
        return "-r" in self.message_id


def conversations(count: int, seed: int = 16, parts: int = 0) -> list[Mail]:
    """About ``count`` mails: originals with 0–3 replies each, replies right behind parents.

    ``parts`` small attachments on each original make it take longer to process (each
    is decoded, hashed, stored and recorded): its replies then meet it in flight more
    often, which makes a test of the waiting sharper.
    """
    files = [(f"scan{i}.txt", "text/plain", f"page {i}\n".encode()) for i in range(parts)]
    rng = random.Random(seed)
    keyed: list[tuple[float, Mail]] = []
    c = 0
    while len(keyed) < count:
        sender = f"Customer {c} <customer{c}@customer.example>"
        subject = f"{rng.choice(TOPICS)} ({c})"
        chain = [f"<c{c}@customer.example>"]
        key = c * 2.0
        first = compose(
            sender=sender,
            subject=subject,
            message_id=chain[0],
            body=f"Help {c}.\n",
            attachments=files,
        )
        keyed.append((key, Mail(chain[0], c, first)))
        for r in range(rng.choice([0, 1, 1, 2, 3])):
            message_id = f"<c{c}-r{r}@customer.example>"
            key += rng.uniform(0.6, 2.6)  # one or two places behind its parent
            raw = compose(
                sender=sender,
                subject=f"Re: {subject}",
                message_id=message_id,
                in_reply_to=chain[-1],
                references=" ".join(chain),
                body=f"More about {c}, part {r}.\n",
            )
            keyed.append((key, Mail(message_id, c, raw)))
            chain.append(message_id)
        c += 1
    keyed.sort(key=lambda pair: pair[0])
    return [mail for _, mail in keyed[:count]]


@contextmanager
def gateways(root: Path, database_url: str, count: int) -> Iterator[list[int]]:
    """``count`` `mailgate serve` processes on one database and one blob folder: their ports."""
    root.mkdir(parents=True, exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    ports: list[int] = []
    log = (root / "serve.log").open("ab")
    try:
        for i in range(count):
            port = free_port()
            data = config_data(root, database_url, {"listener": {"port": port}})
            path = write_config(root / f"gateway{i}.toml", data)
            run = [sys.executable, "-m", "mailgate", "--config", str(path)]
            if i == 0:
                subprocess.run(
                    [*run, "db", "upgrade"], check=True, capture_output=True, timeout=120
                )
            processes.append(subprocess.Popen([*run, "serve", "--no-imap"], stdout=log, stderr=log))
            ports.append(port)
        for process, port in zip(processes, ports, strict=True):
            wait_listening(process, port, root / "serve.log", timeout=60)
        yield ports
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(15)
        log.close()


def _send(port: int, raw: bytes) -> tuple[int, bytes]:
    with smtplib.SMTP("127.0.0.1", port, timeout=300) as client:
        client.ehlo("mx.customer.example")
        client.mail("customer@customer.example")
        client.rcpt("support@example.org")
        return client.data(raw)


def replay(mails: Sequence[Mail], ports: Sequence[int], database_url: str) -> float:
    """Send ``mails`` in order, mail i to ``ports[i % len(ports)]``; seconds until all answered.

    Mail i+1 leaves once mail i's receipt is committed (its arrival), not once it is
    processed: with several processes, a reply's parent is then often still in flight.
    """
    import psycopg2

    watcher = psycopg2.connect(database_url)
    watcher.autocommit = True
    answers: list[Future[tuple[int, bytes]]] = []
    started = time.perf_counter()
    with watcher.cursor() as cursor, ThreadPoolExecutor(max_workers=4 * len(ports)) as pool:
        for i, mail in enumerate(mails):
            answers.append(pool.submit(_send, ports[i % len(ports)], mail.raw))
            deadline = time.monotonic() + 120
            while True:
                cursor.execute("SELECT 1 FROM receipt WHERE message_id = %s", (mail.message_id,))
                if cursor.fetchone() is not None or answers[-1].done():
                    break
                assert time.monotonic() < deadline, f"{mail.message_id} never arrived"
                time.sleep(0.001)
        codes = [future.result() for future in answers]
    elapsed = time.perf_counter() - started
    watcher.close()
    refused = [
        (mail.message_id, code) for mail, code in zip(mails, codes, strict=True) if code[0] != 250
    ]
    assert not refused, refused[:5]
    return elapsed


@dataclass(frozen=True)
class Result:
    """What a user would see: which mails share a ticket, and the acknowledgements sent."""

    groups: frozenset[frozenset[str]]  # the inbound Message-IDs of each ticket
    ticket_of: dict[str, int]
    acknowledgements: Counter[int]  # ticket id → acknowledgements queued for it
    unfinished: int  # receipts not processed (quarantined or still in flight)

    def misthreaded(self, mails: Sequence[Mail]) -> tuple[int, int]:
        """Replies on another conversation's ticket, and replies that opened a ticket."""
        originals = {m.conversation: m.message_id for m in mails if not m.is_reply}
        wrong = new = 0
        for mail in mails:
            if not mail.is_reply or mail.conversation not in originals:
                continue
            own = self.ticket_of.get(originals[mail.conversation])
            ticket = self.ticket_of.get(mail.message_id)
            if ticket == own:
                continue
            if ticket is not None and any(
                self.ticket_of.get(o) == ticket for o in originals.values()
            ):
                wrong += 1
            else:
                new += 1
        return wrong, new

    @property
    def duplicate_acknowledgements(self) -> int:
        return sum(n - 1 for n in self.acknowledgements.values() if n > 1)


def result(database_url: str) -> Result:
    import psycopg2

    connection = psycopg2.connect(database_url)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT ticket_id, message_id FROM message WHERE direction = 'in'")
            rows: list[tuple[Any, ...]] = cursor.fetchall()
            cursor.execute(
                "SELECT ticket_id, count(*) FROM outbox_item WHERE notice = 'acknowledgement'"
                " GROUP BY ticket_id"
            )
            acks = Counter({int(t): int(n) for t, n in cursor.fetchall()})
            cursor.execute("SELECT count(*) FROM receipt WHERE status <> 'processed'")
            unfinished = int(cursor.fetchone()[0])  # type: ignore[index]
    finally:
        connection.close()
    by_ticket: dict[int, set[str]] = {}
    for ticket_id, message_id in rows:
        by_ticket.setdefault(int(ticket_id), set()).add(str(message_id))
    return Result(
        frozenset(frozenset(ids) for ids in by_ticket.values()),
        {str(mid): int(tid) for tid, mid in rows},
        acks,
        unfinished,
    )


def new_schema(base_url: str, name: str) -> str:
    """A fresh schema on the server at ``base_url``: the URL that works inside it."""
    import psycopg2

    connection = psycopg2.connect(base_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
        cursor.execute(f"CREATE SCHEMA {name}")
    connection.close()
    sep = "&" if "?" in base_url else "?"
    return f"{base_url}{sep}options=-c%20search_path%3D{name}"


def drop_schema(base_url: str, name: str) -> None:
    import psycopg2

    connection = psycopg2.connect(base_url)
    connection.autocommit = True
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
    connection.close()
