"""Attachments both ways, through real transports: the listener reached with smtplib, the
CLI as an admin runs it, and an aiosmtpd relay receiving what mailgate sends (issue 11;
the stored-bytes promise of issue 9)."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import smtplib
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailgate import store
from mailgate.context import Context
from tests.conftest import open_gateway
from tests.relay import Relay, free_port
from tests.support import BASE, compose, config_data, load_config, merge, wait_for, write_config


def gateway(tmp_path: Path, database_url: str, relay: Relay, **extra: Any) -> Context:
    overrides: dict[str, Any] = {
        "listener": {"port": free_port()},
        "gateway": {"max_message_size": 5_000_000},
        "outbound": {
            "transport": "smtp",
            "smtp": {"host": relay.host, "port": relay.port, "security": "none", "timeout": 5},
        },
    }
    merge(overrides, extra)
    data = config_data(tmp_path, database_url, overrides)
    return open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))


@pytest.fixture
def listening(
    tmp_path: Path, database_url: str, relay: Relay, serve_in_thread: Any, upgraded_database: None
) -> Any:
    ctx = gateway(tmp_path, database_url, relay)
    serve_in_thread(ctx, imap=False)
    yield ctx
    store.close()


def send(ctx: Context, raw: bytes, sender: str = "carla@customer.example") -> bytes:
    with smtplib.SMTP(ctx.config.listener.host, ctx.config.listener.port, timeout=30) as client:
        client.ehlo("mx.customer.example")
        assert client.docmd(f"MAIL FROM:<{sender}>")[0] == 250
        assert client.docmd("RCPT TO:<support@example.org>")[0] == 250
        code, reply = client.data(raw)
    assert code == 250, reply
    return reply


def cli(ctx: Context, *args: str) -> tuple[int, str, str]:
    """``mailgate ARGS`` as an admin runs it, beside the running gateway."""
    done = mailgate(ctx, *args)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def mailgate(ctx: Context, *args: str) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "mailgate", "--config", str(ctx.config.path), *args]
    return subprocess.run(command, capture_output=True, timeout=60, check=False)


def ticket_of(reply: bytes) -> str:
    return reply.decode().split("[EB#", 1)[1].split("]", 1)[0]


def b64(data: bytes) -> bytes:
    encoded = base64.b64encode(data)
    return b"\r\n".join(encoded[i : i + 76] for i in range(0, len(encoded), 76))


def forwarding_mail(pdf: bytes, inner: bytes, padding: int) -> bytes:
    """A customer's mail with a PDF and a forwarded mail (message/rfc822), written out
    by hand so the bytes each part stands for are known exactly."""
    return (
        b"From: Carla <carla@customer.example>\r\nTo: support@example.org\r\n"
        b"Subject: Fwd: the statement\r\nMessage-ID: <fwd-" + str(len(inner)).encode()
        + b"-" + str(padding).encode() + b"@customer.example>\r\n"
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=outer\r\n\r\n"
        b"--outer\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nSee below.\r\n"
        + b"padding padding\r\n" * (padding // 17)
        + b"--outer\r\nContent-Type: application/pdf; name=statement.pdf\r\n"
        b"Content-Disposition: attachment; filename=statement.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(pdf) + b"\r\n"
        b"--outer\r\nContent-Type: message/rfc822\r\n\r\n" + inner + b"\r\n--outer--\r\n"
    )  # fmt: skip


def inner_mail(size: int) -> bytes:
    return (
        b"From: Bank <noreply@bank.example>\r\nTo: carla@customer.example\r\n"
        b"Subject: Your statement\r\nMessage-ID: <inner@bank.example>\r\n\r\n"
        + b"A line of the forwarded mail, CRLF kept.\r\n" * (size // 42 + 1)
    )


@pytest.mark.parametrize(
    ("inner_size", "pdf_size", "padding"),
    [
        (500, 1_000, 0),
        (9_000, 3_000, 20_000),
        (12_000, 200_000, 0),
        (150_000, 9_000, 30_000),
        # Over app.SPOOL_ABOVE: serve hands the mail to its worker as a file.
        (20_000, 1_500_000, 0),
    ],
)
def test_every_stored_attachment_equals_its_part_and_show_json_gives_size_and_sha256(
    listening: Context,
    tmp_path: Path,
    inner_size: int,
    pdf_size: int,
    padding: int,
) -> None:
    pdf = random.Random(pdf_size).randbytes(pdf_size)
    inner = inner_mail(inner_size)
    number = ticket_of(send(listening, forwarding_mail(pdf, inner, padding)))
    expected = {"statement.pdf": pdf, "Your statement.eml": inner}

    code, out, _ = cli(listening, "tickets", "show", number, "--json")
    assert code == 0
    (first, *_) = json.loads(out)["messages"]
    shown = {a["filename"]: a for a in first["attachments"]}
    assert set(shown) == set(expected)
    for name, data in expected.items():
        assert shown[name]["size"] == len(data)
        assert shown[name]["sha256"] == hashlib.sha256(data).hexdigest()
        # What the blob store holds is the decoded part, byte for byte.
        assert listening.blobs.get(shown[name]["sha256"]) == data

    code, out, _ = cli(listening, "attachments", "list", number, "--json")
    listed = {a["filename"]: a for a in json.loads(out)}
    assert listed["Your statement.eml"]["content_type"] == "message/rfc822"
    assert set(listed["statement.pdf"]) == {
        "id", "message", "filename", "original_filename", "content_type", "size", "sha256",
        "inline", "content_id", "kept",
    }  # fmt: skip
    for name, data in expected.items():
        target = tmp_path / f"got-{name}"
        code, _, err = cli(
            listening, "attachments", "get", str(listed[name]["id"]), "-o", str(target)
        )
        assert code == 0, err
        assert target.read_bytes() == data


def test_attachments_get_writes_the_exact_bytes_to_stdout(listening: Context) -> None:
    pdf = bytes(range(256)) * 40 + b"\r\n\x00\r"
    number = ticket_of(send(listening, forwarding_mail(pdf, inner_mail(100), 0)))
    listed = mailgate(listening, "attachments", "list", number).stdout.decode()
    assert "statement.pdf" in listed and "application/pdf" in listed and "10 KiB" in listed
    ident = next(line.split()[0] for line in listed.splitlines() if "statement.pdf" in line)
    got = mailgate(listening, "attachments", "get", ident)
    assert got.returncode == 0 and got.stdout == pdf


def test_a_big_mail_leaves_no_spool_file_behind(listening: Context) -> None:
    send(listening, forwarding_mail(random.Random(3).randbytes(2_000_000), inner_mail(10), 0))
    blobs = Path(listening.config.storage.blob_dir)
    assert [p.name for p in blobs.iterdir() if p.name.startswith(".")] == []


def test_a_file_sent_twice_is_stored_once(listening: Context) -> None:
    pdf = random.Random(7).randbytes(30_000)
    send(listening, forwarding_mail(pdf, inner_mail(100), 0))
    send(listening, forwarding_mail(pdf, inner_mail(200), 10))
    stored = [p for p in Path(listening.config.storage.blob_dir).rglob("*") if p.is_file()]
    assert sum(p.read_bytes() == pdf for p in stored) == 1


def test_unknown_attachments_are_one_line_errors(
    listening: Context
) -> None:
    assert cli(listening, "attachments", "get", "999999")[2] == (
        "mailgate: no attachment 999999\n"
    )
    assert cli(listening, "attachments", "get", "x")[0] == 1
    code, _, err = cli(listening, "attachments", "list", "424242")
    assert (code, err) == (1, "mailgate: no ticket #424242\n")


def test_a_forwarded_mail_is_fetched_as_eml_with_its_own_files_listed_beneath(
    listening: Context, tmp_path: Path
) -> None:
    contract = random.Random(5).randbytes(12_000)
    inner = (
        b"From: Bank <noreply@bank.example>\r\nSubject: Your contract\r\n"
        b"Content-Type: multipart/mixed; boundary=inner\r\n\r\n"
        b"--inner\r\nContent-Type: text/plain\r\n\r\nSee the contract.\r\n"
        b"--inner\r\nContent-Type: application/pdf\r\n"
        b"Content-Disposition: attachment; filename=contract.pdf\r\n"
        b"Content-Transfer-Encoding: base64\r\n\r\n" + b64(contract) + b"\r\n--inner--\r\n"
    )
    number = ticket_of(send(listening, forwarding_mail(b"%PDF-1.4 tiny", inner, 0)))
    listed = json.loads(cli(listening, "attachments", "list", number, "--json")[1])
    (eml,) = [a for a in listed if a["content_type"] == "message/rfc822"]
    assert eml["filename"] == "Your contract.eml"
    assert eml["contains"] == [
        {
            "filename": "contract.pdf",
            "content_type": "application/pdf",
            "size": len(contract),
            "sha256": hashlib.sha256(contract).hexdigest(),
        }
    ]
    text = cli(listening, "attachments", "list", number)[1]
    lines = text.splitlines()
    at = next(i for i, line in enumerate(lines) if "Your contract.eml" in line)
    assert "└ contract.pdf" in lines[at + 1] and "12 KiB" in lines[at + 1]
    target = tmp_path / "fwd.eml"
    assert cli(listening, "attachments", "get", str(eml["id"]), "-o", str(target))[0] == 0
    assert target.read_bytes() == inner


def test_file_names_are_cleaned_and_the_original_is_kept(listening: Context) -> None:
    names = {
        "../../etc/passwd": "passwd",
        "CON.txt": "_CON.txt",
        "=?utf-8?q?bell=07name.pdf?=": "bellname.pdf",
        "..\\\\..\\\\boot.ini": "boot.ini",
    }
    parts = b"".join(
        b"--outer\r\nContent-Type: application/octet-stream\r\n"
        b'Content-Disposition: attachment; filename="' + name.encode() + b'"\r\n\r\n'
        b"data " + str(i).encode() + b"\r\n"
        for i, name in enumerate(names)
    )
    raw = (
        b"From: carla@customer.example\r\nTo: support@example.org\r\nSubject: names\r\n"
        b"Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
        b"--outer\r\nContent-Type: text/plain\r\n\r\nFiles.\r\n" + parts + b"--outer--\r\n"
    )
    number = ticket_of(send(listening, raw))
    listed = json.loads(cli(listening, "attachments", "list", number, "--json")[1])
    assert [a["filename"] for a in listed] == list(names.values())
    originals = [a["original_filename"] for a in listed]
    assert originals[0] == "../../etc/passwd" and originals[1] == "CON.txt"
    assert originals[3] == "..\\..\\boot.ini"


def _first_mailbox(**extra: Any) -> dict[str, Any]:
    boxes = [dict(box) for box in BASE["mailbox"]]
    boxes[0].update(extra)
    return {"mailbox": boxes}


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"notices": {"attach_max_bytes": -5}}, "notices.attach_max_bytes"),
        ({"notices": {"relay_executables": "yes"}}, "notices.relay_executables"),
        ({"outbound": {"max_message_size": 10}}, "outbound.max_message_size"),
        (_first_mailbox(max_attachment_size=0), "mailbox[0].max_attachment_size"),
        (_first_mailbox(notices={"attach_max_bytes": -2}), "mailbox[0].notices.attach_max_bytes"),
    ],
)
def test_check_rejects_bad_attachment_limits_naming_key_and_file(
    tmp_path: Path, override: dict[str, Any], key: str
) -> None:
    path = write_config(
        tmp_path / "mailgate.toml", config_data(tmp_path, f"sqlite:///{tmp_path}/x.db", override)
    )
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(path), "check"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode != 0
    assert key in done.stdout + done.stderr and str(path) in done.stdout + done.stderr
    assert "Traceback" not in done.stderr


def test_lines_starting_with_a_dot_arrive_as_sent_through_the_chunked_data_reader(
    listening: Context,
) -> None:
    # smtplib doubles each leading dot (RFC 5321 4.5.2); the listener must undo it, also
    # across its 1 MiB chunks, and keep every other byte.
    notes = b"".join(
        b".line %d with a leading dot\r\n..two dots\r\n.\r\nplain\r\n" % i for i in range(40_000)
    )
    raw = (
        b"From: carla@customer.example\r\nTo: support@example.org\r\nSubject: dots\r\n"
        b"Content-Type: multipart/mixed; boundary=outer\r\n\r\n"
        b"--outer\r\nContent-Type: text/plain\r\n\r\nSee the notes.\r\n"
        b"--outer\r\nContent-Type: text/plain; name=notes.txt\r\n"
        b"Content-Disposition: attachment; filename=notes.txt\r\n\r\n" + notes
        + b"--outer--\r\n"
    )  # fmt: skip
    assert len(notes) > 2 * 1024 * 1024
    number = ticket_of(send(listening, raw))
    (listed,) = json.loads(cli(listening, "attachments", "list", number, "--json")[1])
    # The CRLF before the boundary belongs to the boundary (RFC 2046).
    assert listed["sha256"] == hashlib.sha256(notes[:-2]).hexdigest()
    assert listening.blobs.get(listed["sha256"]) == notes[:-2]


def test_a_big_mail_through_the_listener_is_stored_byte_identical(listening: Context) -> None:
    # Over 1 MiB the listener writes DATA into a spool file the worker reads: the stored
    # mail must be the very bytes sent, across chunks, dots and a line of 5,000 octets.
    pdf = random.Random(11).randbytes(3_000_000)  # 4.4 MB of mail: under the 5 MB limit
    inner = inner_mail(300_000) + b".a dot-led line\r\n" + b"x" * 5_000 + b"\r\n"
    raw = forwarding_mail(pdf, inner, 50_000)
    number = ticket_of(send(listening, raw))
    assert listening.blobs.get(hashlib.sha256(raw).hexdigest()) == raw
    listed = json.loads(cli(listening, "attachments", "list", number, "--json")[1])
    by_name = {a["filename"]: a for a in listed}
    assert by_name["statement.pdf"]["sha256"] == hashlib.sha256(pdf).hexdigest()
    assert mailgate(listening, "attachments", "get", str(by_name["statement.pdf"]["id"])).stdout == pdf
    blobs = Path(listening.config.storage.blob_dir)
    assert [p.name for p in blobs.iterdir() if p.name.startswith(".spool")] == []


def html_mail(body: str, html: str, **kwargs: Any) -> bytes:
    return compose(sender="Carla <carla@customer.example>", body=body, html=html, **kwargs)


def notices_to(relay: Relay, address: str, kind: str) -> list[Any]:
    return [
        r.message
        for r in relay.received
        if address in r.rcpt_tos and r.message["X-Mailgate-Notice"] == kind
    ]


def assert_shows_the_sanitised_html(notice: Any, text: str) -> None:
    assert notice.get_content_type() == "multipart/alternative"
    html = notice.get_body(("html",)).get_content()
    assert "Still <b>down</b>" in html and "<td>card 4711</td>" in html
    assert "<script" not in html and "alert(1)" not in html and "onerror" not in html
    assert text in notice.get_body(("plain",)).get_content()


HOSTILE = (
    "<p>Still <b>down</b>, see the table.</p><table><tr><td>card 4711</td></tr></table>"
    '<script>alert(1)</script><img src="https://tracker.example/p.gif" onerror="x()">'
)


def test_assignment_and_reopened_notices_show_the_customers_html_sanitised(
    listening: Context, relay: Relay
) -> None:
    first = html_mail("Still down, see the table.", HOSTILE, message_id="<html-1@customer.example>")
    number = ticket_of(send(listening, first))
    (assignment,) = wait_for(lambda: notices_to(relay, "alice@example.org", "assignment"))
    assert_shows_the_sanitised_html(assignment, "Still down, see the table.")

    assert cli(listening, "tickets", "status", number, "resolved")[0] == 0
    again = html_mail(
        "Down again.",
        HOSTILE.replace("Still", "Again"),
        subject=f"Re: [EB#{number}] The mobile online banking is down",
        message_id="<html-2@customer.example>",
        in_reply_to="<html-1@customer.example>",
    )
    send(listening, again)
    (reopened,) = wait_for(lambda: notices_to(relay, "alice@example.org", "reopened"))
    html = reopened.get_body(("html",)).get_content()
    assert reopened.get_content_type() == "multipart/alternative"
    assert "Again <b>down</b>" in html and "<td>card 4711</td>" in html
    assert "<script" not in html and "onerror" not in html
    assert "Down again." in reopened.get_body(("plain",)).get_content()
