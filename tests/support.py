"""Test support: configs, mails as a client would write them, and service checks.

Real components only: configs are real TOML files, databases are real SQLite
files or the real PostgreSQL, mail is real RFC 5322 bytes.
"""

from __future__ import annotations

import copy
import email.utils
import os
import smtplib
import subprocess
import sys
import time
import uuid
from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any, NoReturn

import pytest

from mailgate import config as cfg

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def service_missing(reason: str) -> NoReturn:
    """Skip locally; under CI=true a missing service is a failure, never a silent skip."""
    if CI:
        pytest.fail(f"{reason} — CI=true turns this skip into a failure", pytrace=False)
    pytest.skip(reason)


BASE: dict[str, Any] = {
    "gateway": {
        "name": "Example Bank Helpdesk",
        "domain": "helpdesk.example.org",
        "ticket_prefix": "EB",
    },
    "lifecycle": {"reopen_window_days": 30},
    "mailbox": [
        {
            "name": "support",
            "address": "support@example.org",
            "aliases": ["help@example.org"],
            "team": "level1",
            "priority": "normal",
        },
        {
            "name": "banking",
            "address": "banking@example.org",
            "team": "online-banking",
            "priority": "high",
            "notices": {"acknowledgement": False},
        },
    ],
    "team": [
        {
            "key": "level1",
            "name": "Level 1",
            "address": "level1@example.org",
            "members": ["alice", "bob"],
            "escalation": "carol",
        },
        {
            "key": "online-banking",
            "name": "Online Banking",
            "address": "banking-team@example.org",
            "members": ["bob", "carol"],
            "assignment": "round_robin",
        },
        {
            "key": "sysadmins",
            "name": "System Administrators",
            "address": "sysadmins@example.org",
            "members": ["jane", "carol"],
            "escalation": "jane",
            "assignment": "least_open",
        },
    ],
    "agent": [
        {"key": "alice", "name": "Alice Smith", "emails": ["alice@example.org"]},
        {"key": "bob", "name": "Bob Jones", "emails": ["bob@example.org"]},
        {"key": "carol", "name": "Carol White", "emails": ["carol@example.org"], "role": "admin"},
        {"key": "jane", "name": "Jane Doe", "emails": ["jane.doe@example.org"]},
    ],
}


def config_data(
    tmp: Path, database_url: str, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    data = copy.deepcopy(BASE)
    data["gateway"]["secret_key_file"] = str(tmp / "secret.key")
    data["storage"] = {"blob_dir": str(tmp / "blobs")}
    data["database"] = {"url": database_url}
    data["outbound"] = {"transport": "maildir", "maildir": str(tmp / "sent")}
    merge(data, overrides or {})
    return data


def merge(into: dict[str, Any], extra: dict[str, Any]) -> None:
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            merge(into[key], value)
        else:
            into[key] = value


def write_config(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(to_toml(data))
    return path


def load_config(path: Path) -> cfg.Config:
    return cfg.load(path)


def to_toml(data: dict[str, Any]) -> str:
    """A small TOML writer for test configs (tables, arrays of tables, scalars, lists)."""
    lines: list[str] = []
    _toml_table(data, [], lines)
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(value)


def _toml_table(data: dict[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict) and not _is_table_list(v)}
    for key, value in scalars.items():
        lines.append(f"{key} = {_toml_value(value)}")
    for key, value in data.items():
        if isinstance(value, dict):
            lines.append(f"\n[{'.'.join([*path, key])}]")
            _toml_table(value, [*path, key], lines)
        elif _is_table_list(value):
            for item in value:
                lines.append(f"\n[[{'.'.join([*path, key])}]]")
                _toml_table(item, [*path, key], lines)


def _is_table_list(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(v, dict) for v in value)


def compose(
    *,
    sender: str = "Carla Customer <carla@customer.example>",
    to: str = "support@example.org",
    cc: str | None = None,
    subject: str = "The mobile online banking is down",
    body: str = "Hello,\n\nthe entire mobile online banking system is down.\n\nCarla\n",
    html: str | None = None,
    message_id: str | None = None,
    in_reply_to: str | None = None,
    references: str | None = None,
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] = (),  # type: ignore[assignment]
) -> bytes:
    """A mail as a modern client writes it."""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = to
    if cc:
        msg["Cc"] = cc
    msg["Subject"] = subject
    msg["Date"] = email.utils.formatdate(localtime=False)
    msg["Message-ID"] = message_id or f"<{uuid.uuid4().hex}@customer.example>"
    if in_reply_to:
        msg["In-Reply-To"] = in_reply_to
    if references:
        msg["References"] = references
    for name, value in (headers or {}).items():
        msg[name] = value
    msg.set_content(body)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for filename, ctype, data in attachments:
        maintype, subtype = ctype.split("/", 1)
        msg.add_attachment(data, maintype=maintype, subtype=subtype, filename=filename)
    return msg.as_bytes()


def via_our_mta(raw: bytes, authentication_results: str, server: str = "mx.example.org") -> bytes:
    """``raw`` as our receiving MTA hands it on: the Received header it prepends, and its
    Authentication-Results above that (where Postfix with rspamd puts them)."""
    trace = (
        f"Authentication-Results: {authentication_results}\r\n"
        "Received: from mail.example.org (mail.example.org [192.0.2.25])\r\n"
        f"\tby {server} (Postfix) with ESMTPS id 4XyzAB; Mon, 23 Nov 2026 09:00:00 +0000\r\n"
    )
    return trace.encode() + raw


def reply_to(
    original: bytes,
    *,
    sender: str,
    body: str,
    subject: str | None = None,
    quote: bool = True,
    **kwargs: Any,
) -> bytes:
    """A reply built the way mail clients build one: Re:, In-Reply-To, References, a quote."""
    parsed = email.message_from_bytes(original)
    mid = parsed["Message-ID"]
    refs = " ".join(" ".join(str(x).split()) for x in (parsed.get("References"), mid) if x)
    text = body
    if quote:
        quoted = "\n".join("> " + line for line in _plain(parsed).splitlines())
        text = f"{body}\n\nOn Mon, 23 Nov 2026 at 10:00, Helpdesk <{parsed['From']}> wrote:\n{quoted}\n"
    from mailgate.mail.charsets import decode_header

    return compose(
        sender=sender,
        to=kwargs.pop("to", str(parsed.get("Reply-To") or parsed["From"])),
        subject=subject if subject is not None else "Re: " + decode_header(str(parsed["Subject"])),
        body=text,
        in_reply_to=mid,
        references=refs,
        **kwargs,
    )


def _plain(parsed: Any) -> str:
    for part in parsed.walk():
        if part.get_content_type() == "text/plain":
            payload = part.get_payload(decode=True) or b""
            return payload.decode(part.get_content_charset() or "utf-8", "replace")
    return ""


def new_schema_name() -> str:
    return "t_" + uuid.uuid4().hex[:16]


def self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    """A throwaway certificate and key (PEM) for STARTTLS tests, made with openssl."""
    cert, key = directory / "cert.pem", directory / "key.pem"
    made = subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        check=False,
    )
    if made.returncode != 0:
        service_missing(f"openssl could not make a test certificate: {made.stderr!r}")
    return cert, key


def imap_account(
    host: str, port: int, user: str, password: str, directory: Path, **extra: Any
) -> dict[str, Any]:
    """An [[imap]] table for a test Dovecot user; the password goes into a file."""
    secret = directory / f"{user}.password"
    secret.write_text(password + "\n")
    return {
        "name": "support-inbox",
        "mailbox": "support",
        "host": host,
        "port": port,
        "security": "none",
        "user": user,
        "password_file": str(secret),
        **extra,
    }


def wait_for(condition: Any, timeout: float = 15.0) -> Any:
    """Poll ``condition`` until it is truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def autocommit_connection(url: str) -> Any:
    """A psycopg2 connection to ``url`` in autocommit: each statement its own transaction,
    so none is left open (a test's DDL, locks it takes on purpose in a transaction of
    its own, pg_stat_activity and pg_terminate_backend)."""
    import psycopg2

    connection = psycopg2.connect(url)
    connection.autocommit = True
    return connection


def start_serve(
    config_path: Path, *arguments: str, port: int | None = None
) -> subprocess.Popen[bytes]:
    """``mailgate --config CONFIG ARGUMENTS`` (``serve`` and its options; ``serve`` when
    none are given) as its own process, started in the config's directory with its output
    appended to ``serve.log`` there; returned once its SMTP listener (on ``port``, else the
    config's) answers. Tests stop it themselves (a signal is what most are about)."""
    log = config_path.parent / "serve.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "mailgate", "--config", str(config_path),
             *(arguments or ("serve",))],
            stdout=output,
            stderr=output,
            cwd=config_path.parent,
        )  # fmt: skip
    try:
        wait_listening(process, port or load_config(config_path).listener.port, log)
    except BaseException:
        process.kill()  # a serve that did not come up is not left running after the test
        process.wait(15)
        raise
    return process


def wait_listening(
    process: subprocess.Popen[bytes], port: int, log: Path, timeout: float = 30.0
) -> None:
    """Wait until ``process`` answers SMTP on 127.0.0.1:``port``; fail with its ``log``
    if it exits first, or after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with smtplib.SMTP("127.0.0.1", port, timeout=2) as probe:
                probe.noop()
            return
        except OSError:
            assert process.poll() is None, log.read_text()
            time.sleep(0.05)
    raise AssertionError("serve did not start listening")


def descendants(pid: int) -> list[int]:
    """Every living process below ``pid`` (from /proc, Linux)."""
    found: list[int] = []
    parents = {pid}
    changed = True
    while changed:
        changed = False
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            child = int(stat.parent.name)
            if int(fields[1]) in parents and child not in parents and fields[0] != "Z":
                parents.add(child)
                found.append(child)
                changed = True
    return found
