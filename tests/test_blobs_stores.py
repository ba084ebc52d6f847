"""Blobs shared across machines (issue 16): the same behaviour from the local folder, a
PostgreSQL table and an S3 bucket, chosen by ``storage.blob_url``.

S3 is a real S3 API server started here (moto's server mode, on a free port of
127.0.0.1), PostgreSQL the one of ``MAILGATE_TEST_DATABASE_URL``; under CI=true neither
is ever skipped.
"""

from __future__ import annotations

import email
import hashlib
import os
import random
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest

from mailgate import attachments, outbox, store
from mailgate.admin.check import checks
from mailgate.blobs import BlobMissing, BlobStore, FileStore, open_store, store_for_url
from mailgate.cli import main
from mailgate.config import Config
from mailgate.context import Context
from mailgate.errors import ConfigError, TemporaryFailure
from mailgate.intake import ingest
from mailgate.store import models as m
from tests.conftest import PG_ENV, open_gateway
from tests.support import (
    compose,
    config_data,
    load_config,
    new_schema_name,
    service_missing,
    write_config,
)

PDF = b"%PDF-1.4\n" + random.Random(16).randbytes(300_000) + b"\n%%EOF\n"
AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class S3Server:
    """moto's S3 API server in a thread of the test process, on 127.0.0.1."""

    def __init__(self, port: int = 0) -> None:
        try:
            from moto.server import ThreadedMotoServer
        except ImportError:
            service_missing("the S3 tests need moto[server] (pip install -e '.[dev]')")
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        self.server.start()
        _host, self.port = self.server.get_host_and_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"

    def bucket(self, name: str) -> str:
        """A new bucket ``name-<random>`` (moto keeps its buckets for the whole process)."""
        import boto3

        name = f"{name}-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint).create_bucket(Bucket=name)
        return name

    def keys(self, name: str) -> list[str]:
        import boto3

        found = boto3.client("s3", endpoint_url=self.endpoint).list_objects_v2(Bucket=name)
        return [o["Key"] for o in found.get("Contents", [])]

    def stop(self) -> None:
        self.server.stop()


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in AWS.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def s3(aws: None) -> Iterator[S3Server]:
    server = S3Server()
    yield server
    server.stop()  # (twice is harmless)


@pytest.fixture
def pg_blob_url() -> Iterator[str]:
    """A PostgreSQL blob store in a schema of its own (not the gateway's database)."""
    base = os.environ.get(PG_ENV)
    if not base:
        service_missing(f"PostgreSQL tests need {PG_ENV}")
    import psycopg2

    schema = new_schema_name()
    try:
        conn = psycopg2.connect(base)
    except psycopg2.OperationalError as exc:
        service_missing(f"PostgreSQL at {base} is not reachable: {exc}")
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if "?" in base else "?"
        yield f"{base}{sep}options=-c%20search_path%3D{schema}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


@pytest.fixture(params=["file", "postgresql", "s3"])
def blobs(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "file":
        return FileStore(tmp_path / "blobs")
    if request.param == "postgresql":
        return store_for_url(request.getfixturevalue("pg_blob_url"))
    server: S3Server = request.getfixturevalue("s3")
    bucket = server.bucket("mailgate")
    return store_for_url(f"s3://{bucket}/blobs/", s3_endpoint=server.endpoint)


# --- the same behaviour from every store ----------------------------------------------------


def test_a_blob_is_stored_once_by_its_sha256_and_read_back_byte_for_byte(blobs: BlobStore) -> None:
    data = bytes(range(256)) * 10 + b"\x00\r\n.\r\n"
    assert not blobs.exists(sha(data))
    assert blobs.put(data) == sha(data)
    assert blobs.put(data, sha(data)) == sha(data)  # twice: still one blob, no error
    assert blobs.exists(sha(data))
    assert blobs.get(sha(data)) == data
    assert blobs.size(sha(data)) == len(data)
    with blobs.open(sha(data)) as reader:
        assert reader.read(3) == bytes([0, 1, 2])
        assert reader.read() == data[3:]


def test_a_stream_is_stored_in_chunks_and_read_in_parts(blobs: BlobStore) -> None:
    chunks = [random.Random(i).randbytes(700_000) for i in range(4)]  # 2.7 MiB
    whole = b"".join(chunks)
    assert blobs.write_chunks(iter(chunks)) == (sha(whole), len(whole))
    with blobs.open(sha(whole)) as reader:
        parts = []
        while part := reader.read(1 << 20):
            assert len(part) <= 1 << 20
            parts.append(part)
    assert b"".join(parts) == whole
    assert blobs.get(sha(whole)) == whole


def test_a_missing_blob_says_so_and_a_deleted_one_is_gone(blobs: BlobStore) -> None:
    absent = sha(b"never stored")
    for read in (blobs.get, blobs.open, blobs.size):
        with pytest.raises(BlobMissing, match=absent):
            read(absent)
    with pytest.raises(FileNotFoundError):  # what callers of the file store always caught
        blobs.get(absent)
    digest = blobs.put(b"short-lived")
    blobs.delete(digest)
    assert not blobs.exists(digest)
    with pytest.raises(ValueError, match="not a sha256"):
        blobs.get("../../etc/passwd")


def test_only_the_file_store_has_local_files(blobs: BlobStore, tmp_path: Path) -> None:
    digest = blobs.put(b"where am I")
    path = blobs.local_path(digest)
    if isinstance(blobs, FileStore):
        assert path is not None and path.read_bytes() == b"where am I"
    else:
        assert path is None
        assert not (tmp_path / "blobs").exists()
    assert digest in blobs.location(digest)


# --- configuration ----------------------------------------------------------------------------


def configured(tmp_path: Path, storage: dict[str, Any], database_url: str = "") -> Path:
    data = config_data(tmp_path, database_url or f"sqlite:///{tmp_path / 'mailgate.db'}")
    data["storage"] = storage
    return write_config(tmp_path / "mailgate.toml", data)


def test_blob_url_names_the_store_and_a_file_url_or_path_is_the_blob_folder(
    tmp_path: Path,
) -> None:
    config = load_config(configured(tmp_path, {"blob_url": "stored/blobs"}))
    assert config.storage.blob_dir == str(tmp_path / "stored" / "blobs")  # next to the file
    assert isinstance(open_store(config), FileStore)
    config = load_config(configured(tmp_path, {"blob_url": f"file://{tmp_path}/b"}))
    assert config.storage.blob_dir == f"{tmp_path}/b"
    config = load_config(configured(tmp_path, {}))
    assert config.storage.blob_dir == str(tmp_path / "var" / "blobs")  # the default
    config = load_config(
        configured(tmp_path, {"blob_url": "s3://bucket/pre", "s3_endpoint": "http://127.0.0.1:9"})
    )
    assert open_store(config).url == "s3://bucket/pre"
    config = load_config(configured(tmp_path, {"blob_url": "postgresql://db.example/blobs"}))
    assert open_store(config).url == "postgresql://db.example/blobs"


@pytest.mark.parametrize(
    ("storage", "error"),
    [
        (
            {"blob_dir": "var/blobs", "blob_url": "s3://b/p"},
            "storage.blob_url: set either blob_dir or blob_url, not both",
        ),
        ({"blob_url": "ftp://host/x"}, "storage.blob_url: unsupported blob store 'ftp'"),
        ({"blob_url": "s3://AKIA:secret@bucket/x"}, "storage.blob_url: credentials do not"),
        ({"blob_url": "s3:///x"}, "storage.blob_url: an S3 URL is s3://bucket/prefix"),
        ({"blob_url": "file://host/x"}, "storage.blob_url: a file URL is file:///absolute/path"),
        ({"blob_url": "var/b", "s3_endpoint": "http://x"}, "storage.s3_endpoint: only for"),
        ({"blob_url": "s3://b", "s3_endpoint": "minio:9000"}, "storage.s3_endpoint: a URL like"),
    ],
)
def test_a_wrong_blob_store_setting_is_one_line_naming_key_and_file(
    tmp_path: Path, storage: dict[str, Any], error: str
) -> None:
    path = configured(tmp_path, storage)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(error)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    result = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(path), "check"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 78 and "Traceback" not in result.stderr
    assert error in result.stderr


# --- whole mails through the S3 and the PostgreSQL store --------------------------------------


def gateway(tmp_path: Path, database_url: str, storage: dict[str, Any]) -> Context:
    return open_gateway(load_config(configured(tmp_path, storage, database_url)))


def mail_with_a_pdf() -> bytes:
    return compose(
        subject="Statement attached", attachments=[("Kontoauszug.pdf", "application/pdf", PDF)]
    )


def files_in_sent(tmp_path: Path, notice: str) -> dict[str, bytes]:
    """filename → bytes of the files of the delivered notices of kind ``notice``."""
    found: dict[str, bytes] = {}
    for path in sorted((tmp_path / "sent" / "new").iterdir()):
        message = email.message_from_bytes(path.read_bytes(), policy=policy.default)
        if message["X-Mailgate-Notice"] != notice:
            continue
        for part in message.walk():
            if part.get_filename():
                found[part.get_filename()] = part.get_payload(decode=True)
    return found


def whole_mail_round_trip(ctx: Context, tmp_path: Path) -> None:
    """Ingest → ticket → attachments list/get → the assignment notice carries the file."""
    raw = mail_with_a_pdf()
    outcome = ingest(ctx, raw, source="smtp")
    assert outcome.action == "created" and outcome.ticket is not None
    assert ctx.blobs.get(sha(raw)) == raw
    (listed,) = attachments.listing(ctx, outcome.ticket)
    assert (listed["filename"], listed["sha256"]) == ("Kontoauszug.pdf", sha(PDF))
    with attachments.fetch(ctx, listed["id"]).open() as reader:
        assert reader.read() == PDF
    report = outbox.deliver(ctx.config)
    assert report.failed == 0 and report.sent >= 2
    # The notice to the agent carries the file: composed into the blob store when it was
    # sent, sent from it.
    stored = [
        bytes(i.content) for i in m.OutboxItem.select() if i.notice == "assignment"
    ]
    assert stored and all(c.startswith(b"\x00mailgate-blob:") for c in stored)
    assert files_in_sent(tmp_path, "assignment")["Kontoauszug.pdf"] == PDF


def test_a_whole_mail_with_a_file_through_the_s3_store(
    tmp_path: Path, database_url: str, s3: S3Server
) -> None:
    bucket = s3.bucket("helpdesk")
    ctx = gateway(
        tmp_path, database_url, {"blob_url": f"s3://{bucket}/eb", "s3_endpoint": s3.endpoint}
    )
    try:
        whole_mail_round_trip(ctx, tmp_path)
        keys = s3.keys(bucket)
        assert f"eb/{sha(PDF)}" in keys and len(keys) >= 3  # raw mail, file, notice
        # The local folder holds nothing but the spool of big mails in flight.
        assert not [p for p in (tmp_path / "var").rglob("*") if p.is_file()]
    finally:
        store.close()


@pytest.mark.postgres
def test_a_whole_mail_with_a_file_through_the_postgresql_store(
    tmp_path: Path, database_url: str
) -> None:
    """blob_url may be the gateway's own database: the database is the only shared state."""
    ctx = gateway(tmp_path, database_url, {"blob_url": database_url})
    try:
        whole_mail_round_trip(ctx, tmp_path)
        assert m.StoredBlob.get_by_id(sha(PDF)).size == len(PDF)
        assert not (tmp_path / "blobs").exists() and not (tmp_path / "var").exists()
    finally:
        store.close()


def test_an_s3_store_that_is_down_is_a_temporary_failure_and_the_mail_comes_later(
    tmp_path: Path, database_url: str, aws: None
) -> None:
    port = free_port()
    bucket = f"later-{uuid.uuid4().hex[:12]}"
    storage = {"blob_url": f"s3://{bucket}/eb", "s3_endpoint": f"http://127.0.0.1:{port}"}
    ctx = gateway(tmp_path, database_url, storage)
    raw = mail_with_a_pdf()
    try:
        with pytest.raises(TemporaryFailure, match=f"blob store s3://{bucket}/eb"):
            ingest(ctx, raw, source="smtp")
        assert m.Receipt.select().count() == 0  # nothing recorded: the sender keeps the mail
        blob_check = {c.name: c for c in checks(ctx.config)}["blob store"]
        assert not blob_check.ok and f"s3://{bucket}/eb" in blob_check.detail
        # Postfix's pipe: exit 75, the mail stays in Postfix's queue.
        env = {**os.environ, **AWS}
        result = subprocess.run(
            [sys.executable, "-m", "mailgate", "--config", str(tmp_path / "mailgate.toml"),
             "ingest", "-"],
            input=raw, capture_output=True, env=env, check=False,
        )  # fmt: skip
        assert result.returncode == 75, result.stderr
        assert b"Traceback" not in result.stderr and b"blob store" in result.stderr
        # The store is back: the retried mail is stored, whole.
        server = S3Server(port)
        try:
            import boto3

            boto3.client("s3", endpoint_url=server.endpoint).create_bucket(Bucket=bucket)
            assert {c.name: c for c in checks(ctx.config)}["blob store"].ok
            outcome = ingest(ctx, raw, source="smtp")
            assert outcome.action == "created"
            assert ctx.blobs.get(sha(raw)) == raw and ctx.blobs.get(sha(PDF)) == PDF
        finally:
            server.stop()
    finally:
        store.close()


# --- moving the blobs: mailgate blobs copy, then switching blob_url ----------------------------


def run(config: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(["--config", str(config), *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_blobs_copy_to_s3_then_switching_blob_url_keeps_everything_readable(
    tmp_path: Path, database_url: str, s3: S3Server, capsys: pytest.CaptureFixture[str]
) -> None:
    bucket = s3.bucket("moved")
    path = configured(tmp_path, {"blob_dir": str(tmp_path / "blobs")}, database_url)
    ctx = open_gateway(load_config(path))
    raws = [mail_with_a_pdf(), compose(subject="Second, no file")]
    try:
        tickets = [ingest(ctx, raw, source="smtp").ticket for raw in raws]
        outbox.deliver(ctx.config)  # the notice with the file is composed into the blob store
        notices = [
            i
            for i in m.OutboxItem.select()
            if bytes(i.content).startswith(b"\x00mailgate-blob:")
        ]
        assert notices  # a notice composed into the blob store is among what is copied
    finally:
        store.close()
    wanted = {sha(raws[0]), sha(raws[1]), sha(PDF)}
    target = f"s3://{bucket}/eb"
    code, out, err = run(
        path, "blobs", "copy", "--to", target, "--s3-endpoint", s3.endpoint, capsys=capsys
    )
    assert code == 0, err
    copied = int(out.split(" copied")[0])
    assert copied >= len(wanted) + 1
    assert "0 already there, 0 missing" in out and "0 corrupt" in out
    assert {f"eb/{d}" for d in wanted} <= set(s3.keys(bucket))
    # Resumable: run again, nothing is copied twice.
    code, out, _ = run(path, "blobs", "copy", "--to", target, "--s3-endpoint", s3.endpoint, capsys=capsys)
    assert code == 0 and out.startswith(f"0 copied, {copied} already there")
    # Switch the gateway over and take the old folder away: everything is still there.
    shutil.move(tmp_path / "blobs", tmp_path / "old-blobs")
    path = configured(tmp_path, {"blob_url": target, "s3_endpoint": s3.endpoint}, database_url)
    code, out, _ = run(path, "blobs", "get", sha(raws[1]), capsys=capsys)
    assert code == 0 and "Second, no file" in out
    code, _, err = run(path, "blobs", "get", sha(PDF), "-o", str(tmp_path / "got.pdf"), capsys=capsys)
    assert code == 0 and (tmp_path / "got.pdf").read_bytes() == PDF
    ctx = open_gateway(load_config(path))
    try:
        (listed,) = attachments.listing(ctx, tickets[0])  # type: ignore[arg-type]
        with attachments.fetch(ctx, listed["id"]).open() as reader:
            assert reader.read() == PDF
        # Sent once more, now from S3: the notices composed with their files before the copy.
        m.OutboxItem.update(status="queued", next_attempt_at=m.utcnow()).execute()
        report = outbox.deliver(ctx.config)
        assert report.failed == 0 and report.sent >= 3
        assert files_in_sent(tmp_path, "assignment")["Kontoauszug.pdf"] == PDF
    finally:
        store.close()


def test_blobs_get_writes_bytes_to_stdout_and_says_one_line_for_a_wrong_sha(
    tmp_path: Path, config: Config, capfdbinary: pytest.CaptureFixture[bytes]
) -> None:
    ctx = open_gateway(config)
    data = b"\x00\xff binary \r\n" * 100
    digest = ctx.blobs.put(data)
    store.close()
    assert main(["--config", str(config.path), "blobs", "get", digest]) == 0
    assert capfdbinary.readouterr().out == data
    assert main(["--config", str(config.path), "blobs", "get", "abc"]) == 1
    err = capfdbinary.readouterr().err.decode()
    assert err.strip() == "mailgate: not a sha256 (64 hex digits): 'abc'"
    assert main(["--config", str(config.path), "blobs", "get", sha(b"nothing")]) == 1
    assert f"no blob {sha(b'nothing')}" in capfdbinary.readouterr().err.decode()
    assert main(["--config", str(config.path), "blobs", "copy", "--to", "ftp://x/y"]) == 1
    err = capfdbinary.readouterr().err.decode()
    assert err.strip() == (
        "mailgate: --to: unsupported blob store 'ftp'; use a path, file:///path,"
        " postgresql://… or s3://bucket/prefix"
    )


def test_0013_adds_the_blob_table_to_a_database_of_the_release_before(config: Config) -> None:
    """Upgrading a version 1 database creates ``blob`` (sha256 → content), empty, and the
    PostgreSQL blob store finds its table there when blob_url is the database itself."""
    from mailgate.context import open_context
    from mailgate.store.db import db
    from tests.test_migrations import build_version_1, dialect

    open_context(config)
    try:
        build_version_1(dialect())
        assert "blob" not in db.get_tables()
        done = store.upgrade()
        assert "0013_blobs" in done.applied
        assert {c.name for c in db.get_columns("blob")} == {"sha256", "size", "content", "stored_at"}
        assert [c for c in db.get_primary_keys("blob")] == ["sha256"]
        assert m.StoredBlob.select().count() == 0
        assert m.Ticket.get(m.Ticket.number == 424242).subject == "From before"
    finally:
        store.close()


def test_serve_stores_a_big_mail_in_s3_and_answers_451_while_s3_is_down(
    tmp_path: Path, database_url: str, s3: S3Server, serve_in_thread: Any
) -> None:
    """The real listener and ingest worker: a mail over 1 MiB goes through the local spool
    into S3; with S3 gone the sending MTA hears 451 and keeps the mail until it is back."""
    import smtplib

    from tests.relay import free_port as listener_port

    bucket = s3.bucket("serve")
    data = config_data(tmp_path, database_url, {"listener": {"port": listener_port()}})
    data["storage"] = {"blob_url": f"s3://{bucket}", "s3_endpoint": s3.endpoint}
    ctx = open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))
    big = random.Random(7).randbytes(1_500_000)

    def send(raw: bytes) -> int:
        with smtplib.SMTP("127.0.0.1", ctx.config.listener.port, timeout=120) as client:
            client.ehlo("mx.customer.example")
            client.mail("carla@customer.example")
            client.rcpt("support@example.org")
            return int(client.data(raw)[0])

    try:
        serve_in_thread(ctx, imap=False)
        first = compose(subject="Big scan", attachments=[("scan.bin", "application/x-scan", big)])
        assert send(first) == 250
        assert ctx.blobs.get(sha(first)) == first and ctx.blobs.get(sha(big)) == big
        assert {sha(first), sha(big)} <= set(s3.keys(bucket))
        assert not [p for p in (tmp_path / "var").rglob("*") if p.is_file()]  # spool cleaned
        s3.stop()
        second = compose(subject="While S3 is down")
        assert send(second) == 451
        assert m.Receipt.select().where(m.Receipt.sha256 == sha(second)).count() == 0
        again = S3Server(s3.port)
        try:
            assert send(second) == 250  # the MTA's retry
            assert ctx.blobs.get(sha(second)) == second
        finally:
            again.stop()
    finally:
        store.close()
