"""The ingest worker of `mailgate serve`: a per-mail deadline, no orphans, SIGHUP, its log lines.

Real processes throughout: the listener reached with smtplib, the worker a real
process (killed, stopped, orphaned for real), `mailgate serve` as a subprocess
where the test is about that process.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import smtplib
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from mailgate.context import Context
from mailgate.store import models as m
from tests.conftest import open_gateway
from tests.relay import free_port
from tests.support import (
    compose,
    config_data,
    descendants,
    load_config,
    start_serve,
    wait_for,
    write_config,
)

DEADLINE = 2  # seconds: generous for a normal mail (a few ms), far below the slow one


def mail_with_parts(count: int, subject: str) -> bytes:
    """A mail that genuinely needs long: every one of ``count`` attachments is decoded,
    hashed, stored and recorded (about half a millisecond each on the development
    machine, so 40,000 need some 20 s — ten times the deadline). Linear work, not a
    bug: ``gateway.max_mime_parts`` is raised in the config of these tests."""
    b = "part-boundary"
    head = (
        f"From: slow@customer.example\r\nTo: support@example.org\r\nSubject: {subject}\r\n"
        f"Message-ID: <{uuid.uuid4().hex}@customer.example>\r\nMIME-Version: 1.0\r\n"
        f'Content-Type: multipart/mixed; boundary="{b}"\r\n\r\n'
    )
    parts = [f"--{b}\r\nContent-Type: text/plain\r\n\r\nSee the attached files.\r\n"]
    parts += [
        f"--{b}\r\nContent-Type: application/octet-stream\r\n"
        f'Content-Disposition: attachment; filename="part{i}.bin"\r\n\r\npart {i}\r\n'
        for i in range(count)
    ]
    return (head + "".join(parts) + f"--{b}--\r\n").encode()


def send(port: int, raw: bytes, sender: str = "carla@customer.example") -> tuple[int, bytes]:
    """SMTP as an MTA speaks it; the answer to DATA (code, text)."""
    with smtplib.SMTP("127.0.0.1", port, timeout=120) as client:
        client.ehlo("mx.customer.example")
        client.mail(sender)
        client.rcpt("support@example.org")
        code, reply = client.data(raw)
    return code, reply


def listening(tmp_path: Path, database_url: str, **gateway: Any) -> Context:
    data = config_data(
        tmp_path,
        database_url,
        {
            "listener": {"port": free_port()},
            # the slow mails below have 40,000 parts: all of them are read
            "gateway": {"max_processing_seconds": DEADLINE, "max_mime_parts": 100_000, **gateway},
        },
    )
    return open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))


# --- the per-mail deadline ------------------------------------------------------------------


def test_a_mail_past_the_deadline_is_quarantined_and_the_mail_behind_it_goes_on(
    tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    ctx = listening(tmp_path, database_url)
    serve_in_thread(ctx, imap=False)
    port = ctx.config.listener.port
    slow = mail_with_parts(40_000, "forty thousand scans")
    answers: dict[str, tuple[int, bytes]] = {}
    thread = threading.Thread(target=lambda: answers.update(slow=send(port, slow)))
    thread.start()
    while not m.Receipt.select().count():  # the slow mail is stored and being processed
        time.sleep(0.05)
    sent = time.monotonic()
    answers["normal"] = send(port, compose(subject="Card blocked"))
    waited = time.monotonic() - sent
    thread.join(60)
    assert answers["normal"][0] == 250 and b"created" in answers["normal"][1]
    assert waited < DEADLINE + 15, f"the normal mail waited {waited:.1f} s"
    # The slow one was stored (250: the sender must not retry it) and quarantined.
    assert answers["slow"][0] == 250 and b"quarantined" in answers["slow"][1]
    by_status = {r.status: r for r in m.Receipt.select()}
    assert set(by_status) == {"quarantined", "processed"}
    assert by_status["quarantined"].reason.startswith("took too long")
    assert [t.subject for t in m.Ticket.select()] == ["Card blocked"]


def test_a_worker_that_does_not_answer_is_killed_and_its_mail_quarantined(
    tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    """The worker stops answering (here: SIGSTOP while it works on a mail, as a process
    stuck where no signal handler runs): serve kills it and a fresh worker goes on."""
    ctx = listening(tmp_path, database_url)
    running = serve_in_thread(ctx, imap=False)
    port = ctx.config.listener.port
    answers: list[tuple[int, bytes]] = []
    thread = threading.Thread(
        target=lambda: answers.append(send(port, mail_with_parts(40_000, "stuck")))
    )
    thread.start()
    while not m.Receipt.select().count():
        time.sleep(0.05)
    stuck = running.gateway.worker.pid
    assert stuck is not None
    os.kill(stuck, signal.SIGSTOP)
    thread.join(60)
    assert answers and answers[0][0] == 250 and b"quarantined" in answers[0][1]
    assert not alive(stuck), "the stuck worker was killed"
    (receipt,) = m.Receipt.select()
    assert receipt.status == "quarantined" and receipt.reason.startswith("took too long")
    assert running.gateway.worker.pid not in (None, stuck)  # a new worker took over
    code, reply = send(port, compose(subject="After the stuck one"))
    assert code == 250 and b"created" in reply


def test_mails_handed_over_behind_a_stuck_one_are_stored_by_the_fresh_worker(
    tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    """serve hands mails to the worker ahead of its answers: those waiting behind a mail
    the worker never finishes (SIGSTOP) were not started, and a fresh worker takes them —
    each answered 250 and stored once, none refused, none twice."""
    ctx = listening(tmp_path, database_url)
    running = serve_in_thread(ctx, imap=False)
    port = ctx.config.listener.port
    answers: dict[str, tuple[int, bytes]] = {}

    def deliver(name: str, raw: bytes) -> None:
        answers[name] = send(port, raw)

    stuck_mail = threading.Thread(target=deliver, args=("stuck", mail_with_parts(40_000, "stuck")))
    stuck_mail.start()
    while not m.Receipt.select().count():
        time.sleep(0.05)
    stuck = running.gateway.worker.pid
    assert stuck is not None
    os.kill(stuck, signal.SIGSTOP)
    behind = [
        threading.Thread(target=deliver, args=(f"behind {i}", compose(subject=f"Behind {i}")))
        for i in range(4)
    ]
    for thread in behind:
        thread.start()
    for thread in [stuck_mail, *behind]:
        thread.join(90)
    assert answers["stuck"][0] == 250 and b"quarantined" in answers["stuck"][1]
    for i in range(4):
        code, reply = answers[f"behind {i}"]
        assert code == 250 and b"created" in reply, (i, code, reply)
    assert not alive(stuck)
    assert sorted(t.subject for t in m.Ticket.select()) == [f"Behind {i}" for i in range(4)]
    by_status = sorted(r.status for r in m.Receipt.select())
    assert by_status == ["processed"] * 4 + ["quarantined"]


def test_max_processing_seconds_must_be_positive(tmp_path: Path) -> None:
    data = config_data(tmp_path, "sqlite:///x.db", {"gateway": {"max_processing_seconds": 0}})
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(write_config(tmp_path / "c.toml", data)), "check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78
    assert "gateway.max_processing_seconds: must be more than 0" in done.stderr


@pytest.mark.postgres
def test_several_ingest_workers_on_postgresql_thread_replies_to_originals_in_flight(
    tmp_path: Path, database_url: str, serve_in_thread: Any
) -> None:
    """gateway.ingest_workers = 2 (PostgreSQL): replies that arrive while their originals
    are still being processed by a worker land on the originals' tickets, and every mail
    is stored once and answered 250."""
    ctx = listening(tmp_path, database_url, ingest_workers=2, max_processing_seconds=120)
    running = serve_in_thread(ctx, imap=False)
    port = ctx.config.listener.port
    running.gateway.worker.warm_up()
    assert len(running.gateway.worker.pids) == 2
    # Originals that take a while (3,000 attachments each), so the replies meet them in flight.
    originals = [mail_with_parts(3000, f"Problem {i}") for i in range(3)]
    ids = [re.search(rb"Message-ID: (<[^>]+>)", raw).group(1).decode() for raw in originals]  # type: ignore[union-attr]
    answers: dict[str, tuple[int, bytes]] = {}

    def deliver(name: str, raw: bytes) -> None:
        answers[name] = send(port, raw)

    threads = []
    for i, raw in enumerate(originals):
        threads.append(threading.Thread(target=deliver, args=(f"original {i}", raw)))
        threads[-1].start()
        wait_for(lambda key=ids[i]: m.Receipt.select().where(m.Receipt.message_id == key).exists())
        reply = compose(subject=f"Re: Problem {i}", in_reply_to=ids[i], references=ids[i])
        threads.append(threading.Thread(target=deliver, args=(f"reply {i}", reply)))
        threads[-1].start()
    for thread in threads:
        thread.join(120)
    assert sorted(answers) == sorted([f"original {i}" for i in range(3)] + [f"reply {i}" for i in range(3)])
    for name, (code, reply_text) in answers.items():
        assert code == 250, (name, reply_text)
        assert (b"appended" if name.startswith("reply") else b"created") in reply_text, name
    assert m.Receipt.select().count() == 6
    assert m.Ticket.select().count() == 3
    for ticket in m.Ticket.select():
        assert ticket.messages.where(m.Message.direction == "in").count() == 2


def test_several_ingest_workers_on_sqlite_are_a_config_error(tmp_path: Path) -> None:
    data = config_data(tmp_path, "sqlite:///x.db", {"gateway": {"ingest_workers": 2}})
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(write_config(tmp_path / "c.toml", data)), "check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78
    assert "gateway.ingest_workers: more than 1 needs PostgreSQL" in done.stderr


# --- serve as a process: no orphans, SIGHUP, JSON logs --------------------------------------


@pytest.fixture
def serve_process(tmp_path: Path, database_url: str) -> Iterator[Any]:
    """Start `mailgate serve` (no IMAP) as a subprocess; stopped at the end of the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(*options: str, **gateway: Any) -> tuple[subprocess.Popen[bytes], int]:
        port = free_port()
        data = config_data(
            tmp_path, database_url, {"listener": {"port": port}, "gateway": gateway}
        )
        path = write_config(tmp_path / "mailgate.toml", data)
        run = [sys.executable, "-m", "mailgate", "--config", str(path)]
        subprocess.run([*run, "db", "upgrade"], check=True, capture_output=True, timeout=60)
        process = start_serve(path, *options, "serve", "--no-imap", port=port)
        started.append(process)
        return process, port

    yield start
    # The serve processes are all this fixture opened: it never connects the database in
    # this process (closing it here failed when no earlier test of the worker had opened it).
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(15)


def alive(pid: int) -> bool:
    """Running (a zombie waiting for init to reap it has ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def gone_within(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.05)
    return [p for p in pids if alive(p)]


def test_kill_9_of_serve_leaves_no_process_behind(serve_process: Any) -> None:
    server, port = serve_process()
    assert send(port, compose())[0] == 250
    children = descendants(server.pid)
    assert children, "serve runs ingest in a worker process"
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    assert gone_within(children, 5) == []


def test_kill_9_of_serve_in_the_middle_of_a_long_mail_leaves_no_process_behind(
    serve_process: Any, tmp_path: Path
) -> None:
    server, port = serve_process(max_processing_seconds=600)
    children = descendants(server.pid)
    thread = threading.Thread(
        target=lambda: send_quietly(port, mail_with_parts(60_000, "busy")), daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and blobs(tmp_path) < 100:
        time.sleep(0.05)  # until the worker is storing the attachments of the long mail
    assert blobs(tmp_path) >= 100
    server.send_signal(signal.SIGKILL)
    server.wait(10)
    assert gone_within(children, 5) == []


def blobs(tmp_path: Path) -> int:
    return sum(1 for p in (tmp_path / "blobs").rglob("*") if p.is_file())


def send_quietly(port: int, raw: bytes) -> None:
    # The server dies under it: what the test does on purpose.
    with contextlib.suppress(OSError, smtplib.SMTPException):
        send(port, raw)


def test_the_watchdog_ends_a_worker_whose_parent_died_without_the_kernels_help(
    tmp_path: Path,
) -> None:
    """The fallback where PR_SET_PDEATHSIG is not there: a process that only runs the
    watchdog of the worker ends once its parent is gone."""
    # The parent names itself: a child that took longer than the parent's second to
    # import (a busy machine) would otherwise read its new parent from os.getppid() and
    # watch that one forever. Its output is not the pipe the test reads to its end.
    code = (
        "import os, subprocess, sys\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import sys; from mailgate import worker; "
        "worker._watch_parent(int(sys.argv[1]), 0.1)', str(os.getpid())], "
        "stdout=subprocess.DEVNULL)\n"
        "print(child.pid, flush=True)\n"
        "import time; time.sleep(1)\n"
    )
    parent = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    orphan = int(parent.stdout.split()[0])
    assert gone_within([orphan], 5) == []


def test_sighup_does_not_stop_serve(serve_process: Any, tmp_path: Path) -> None:
    """SIGHUP reloads (tests/test_operating.py); serve and intake go on through it."""
    server, port = serve_process()
    assert send(port, compose(subject="before"))[0] == 250
    server.send_signal(signal.SIGHUP)
    wait_for(lambda: "serve.reloaded" in (tmp_path / "serve.log").read_text())
    code, reply = send(port, compose(subject="after the hangup"))
    assert code == 250 and b"created" in reply
    assert server.poll() is None
    worker = descendants(server.pid)
    assert worker, "a fresh worker took over"
    server.send_signal(signal.SIGTERM)
    assert server.wait(15) == 0
    assert gone_within(worker, 5) == []


def test_json_logs_cover_the_workers_lines_with_utc_times(
    serve_process: Any, tmp_path: Path
) -> None:
    server, port = serve_process("--log-format", "json")
    assert send(port, compose(subject="Logged as JSON"))[0] == 250
    server.send_signal(signal.SIGTERM)
    assert server.wait(15) == 0
    lines = [line for line in (tmp_path / "serve.log").read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line is JSON, the worker's too
    ingested = [r for r in records if r["event"] == "mail.ingested"]
    assert ingested and ingested[0]["action"] == "created"
    assert ingested[0]["logger"] == "mailgate.ingest"
    for record in records:
        assert record["time"].endswith("Z") and record["time"][10] == "T", record["time"]
