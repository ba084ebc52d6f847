"""The schema as named migrations: found by themselves, applied once, safe from many processes.

A database that mailgate created before migrations had names (schema version 1,
built here from the DDL that release ran: ``tests/data/schema_v1_*.sql``) must
upgrade in place and keep its tickets.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from mailgate import store
from mailgate.config import Config
from mailgate.context import open_context
from mailgate.errors import ConfigError
from mailgate.store import migrations, schema
from mailgate.store import models as m
from mailgate.store.db import db
from mailgate.store.sla import ClockRow
from tests.conftest import PG_ENV
from tests.support import compose

DATA = Path(__file__).resolve().parent / "data"


def build_version_1(dialect: str) -> None:
    """The database a mailgate of schema version 1 left behind, with one ticket in it."""
    lines = (DATA / f"schema_v1_{dialect}.sql").read_text().splitlines()
    for statement in "\n".join(x for x in lines if not x.startswith("--")).split(";\n"):
        if statement.strip():
            db.execute_sql(statement)
    db.execute_sql(
        "INSERT INTO contact (email, name, created_at, undeliverable_reason)"
        " VALUES ('old@customer.example', 'Old', '2026-01-01 10:00:00', '')"
    )
    db.execute_sql(
        "INSERT INTO ticket (number, subject, status, priority, mailbox, requester_id, category,"
        " tags, foreign_tags, created_at, updated_at) VALUES (424242, 'From before', 'open',"
        " 'normal', 'support', 1, '', '[]', '[]', '2026-01-01 10:00:00', '2026-01-01 10:00:00')"
    )


def dialect() -> str:
    return "sqlite" if store.is_sqlite() else "postgresql"


def test_a_version_1_database_upgrades_in_place_and_keeps_its_tickets(config: Config) -> None:
    ctx = open_context(config)
    build_version_1(dialect())
    with pytest.raises(ConfigError, match="pending migrations: 0002_named_migrations"):
        store.require_schema()
    done = store.upgrade()
    later = tuple(m.name for m in schema.known()[1:])  # 0002 and whatever came after it
    assert done.before == ("0001_initial",)
    assert done.applied == later and later[0] == "0002_named_migrations"
    assert (done.version_before, done.version) == (1, 1 + len(later))
    store.require_schema()
    # A mailgate from before named migrations sees a version it does not know, and refuses.
    assert db.execute_sql("SELECT MAX(version) FROM schema_version").fetchone()[0] == 2
    assert store.upgrade().applied == ()
    assert m.Ticket.get(m.Ticket.number == 424242).subject == "From before"
    from mailgate import intake

    assert intake.ingest(ctx, compose(), source="smtp").action == "created"
    store.close()


def test_a_fresh_database_gets_the_version_1_schema_then_the_rest(tmp_path: Path) -> None:
    """0001 rebuilds exactly what version 1 created: same tables, columns, types, indexes."""

    def shape(url: str, build: object) -> dict[str, object]:
        store.open_database(url)
        if callable(build):
            build()
        found: dict[str, object] = {}
        for table in sorted(db.get_tables()):
            columns = [(c.name, c.data_type, c.null, c.primary_key) for c in db.get_columns(table)]
            indexes = sorted((i.name, tuple(i.columns), i.unique) for i in db.get_indexes(table))
            found[table] = (columns, indexes)
        store.close()
        return found

    old = shape(f"sqlite:///{tmp_path / 'old.db'}", lambda: build_version_1("sqlite"))
    # 0001 alone: later migrations (of any branch) change the shape on purpose.
    first = schema.known()[0]
    assert first.name == "0001_initial"
    new = shape(f"sqlite:///{tmp_path / 'new.db'}", lambda: first.apply(db, "sqlite"))
    assert new == old


def test_the_migrated_schema_has_every_column_the_models_describe(config: Config) -> None:
    open_context(config)
    store.upgrade()
    models = schema.models()
    assert m.Ticket in models and m.ImapState in models
    for model in models:
        table = model._meta.table_name
        columns = {c.name for c in db.get_columns(table)}
        fields = {f.column_name for f in model._meta.sorted_fields}
        assert columns == fields, f"{table}: a model field without its migration, or the reverse"
    store.close()


def test_a_new_migration_module_is_found_and_applied_once(
    config: Config, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Adding a schema change is adding a file: no list to edit, applied in name order."""
    extra = tmp_path / "more_migrations"
    extra.mkdir()
    (extra / "0003_ticket_notes_count.py").write_text(
        "def apply(db, dialect):\n"
        "    db.execute_sql('ALTER TABLE ticket ADD COLUMN notes_count INTEGER')\n"
    )
    open_context(config)
    store.upgrade()
    monkeypatch.setattr(migrations, "__path__", [*migrations.__path__, str(extra)])
    with pytest.raises(ConfigError, match="pending migrations: 0003_ticket_notes_count"):
        store.require_schema()
    done = store.upgrade()
    assert done.applied == ("0003_ticket_notes_count",) and done.version == len(schema.known())
    assert "notes_count" in {c.name for c in db.get_columns("ticket")}
    assert store.upgrade().applied == ()
    monkeypatch.setattr(migrations, "__path__", [p for p in migrations.__path__ if p != str(extra)])
    with pytest.raises(ConfigError, match=r"does not know \(0003_ticket_notes_count\)"):
        store.require_schema()
    with pytest.raises(ConfigError, match="upgrade mailgate"):
        store.upgrade()
    store.close()


def test_db_upgrade_from_several_processes_at_once_applies_each_migration_once(
    config_path: Path, config: Config
) -> None:
    command = [sys.executable, "-m", "mailgate", "--config", str(config_path), "db", "upgrade"]
    runs = [
        subprocess.Popen(
            command, cwd=config_path.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(3)
    ]
    results = [(run.wait(timeout=60), run.communicate()) for run in runs]
    assert [code for code, _ in results] == [0, 0, 0], results
    outputs = [out.decode() for _, (out, _err) in results]
    shipped = [x.name for x in schema.known()]  # other branches add theirs
    assert sum(f"upgraded from version 0 to {len(shipped)}" in out for out in outputs) == 1
    assert sum(f"up to date (version {len(shipped)})" in out for out in outputs) == 2
    open_context(config)
    names = [r[0] for r in db.execute_sql("SELECT name FROM migration ORDER BY name")]
    assert names == shipped and names[:2] == ["0001_initial", "0002_named_migrations"]
    store.close()


@pytest.mark.postgres
def test_db_upgrade_names_a_process_holding_the_schema_lock_and_gives_up_after_its_wait(
    config_path: Path, database_url: str
) -> None:
    import psycopg2

    holder = psycopg2.connect(database_url, application_name="stuck-script")
    try:
        with holder.cursor() as cur:  # a transaction left open, holding the schema lock
            cur.execute("SELECT pg_advisory_xact_lock(%s)", (schema._LOCK_KEY,))
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        command = [sys.executable, "-m", "mailgate", "--config", str(config_path)]
        stuck = subprocess.run(
            [*command, "db", "upgrade", "--wait", "1"],
            cwd=config_path.parent,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert stuck.returncode == 75, stuck
        lines = stuck.stderr.strip().splitlines()
        assert "waiting up to 1 s for another process's schema upgrade" in stuck.stderr
        assert f"server pid {pid}" in lines[-1] and "stuck-script" in lines[-1]
        assert "held the schema lock for over 1 s" in lines[-1] and "Traceback" not in stuck.stderr
        holder.rollback()  # the script ends: the next upgrade goes through at once
        done = subprocess.run(
            [*command, "db", "upgrade"], cwd=config_path.parent, capture_output=True, text=True
        )
        assert done.returncode == 0 and "upgraded from version 0" in done.stdout, done
    finally:
        holder.close()


def test_check_names_the_pending_migrations(config_path: Path, config: Config) -> None:
    open_context(config)
    build_version_1(dialect())
    store.close()
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config_path), "check"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=config_path.parent,
    )
    (line,) = [x for x in done.stdout.splitlines() if "database" in x]
    assert line.startswith("FAIL") and "pending migrations: 0002_named_migrations" in line
    listing = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(config_path), "tickets", "list"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=config_path.parent,
    )
    assert listing.returncode == 78
    assert "pending migrations: 0002_named_migrations" in listing.stderr


def test_0004_gives_receipts_an_indexed_content_fingerprint_and_keeps_old_ones(
    config: Config,
) -> None:
    """Receipts from before 0004 get '' (never a duplicate of anything); new ones a hash."""
    open_context(config)
    names = [mod.name for mod in schema.known()]
    before = names[: names.index("0004_content_fingerprint")]
    for mod in schema.known():
        if mod.name in before and mod.name != "0002_named_migrations":
            mod.apply(db, dialect())
    db.execute_sql(
        "INSERT INTO receipt (message_id, sha256, fingerprint, size, sender, envelope, source,"
        " mailbox, status, action, reason, attempts, received_at) VALUES ('<old@x>', 'aa', '',"
        " 1, '', '{}', 'smtp', '', 'processed', 'created', '', 1, '2026-01-01 10:00:00')"
    )
    next(mod for mod in schema.known() if mod.name == "0004_content_fingerprint").apply(
        db, dialect()
    )
    assert m.Receipt.get(m.Receipt.message_id == "<old@x>").content_fingerprint == ""
    indexed = {tuple(i.columns) for i in db.get_indexes("receipt")}
    assert ("content_fingerprint",) in indexed


def test_the_search_index_is_backfilled_for_tickets_stored_before_it(config: Config) -> None:
    """0007 indexes the threads already stored; from then on triggers keep it current."""
    from mailgate import intake, search

    ctx = open_context(config)
    store.upgrade()
    # The database as it was before 0007: no index, no triggers, a ticket stored.
    if dialect() == "sqlite":
        for name in ("insert", "delete", "unindex", "reindex"):
            db.execute_sql(f"DROP TRIGGER message_fts_{name}")
        for name in ("insert", "delete", "update"):
            db.execute_sql(f"DROP TRIGGER attachment_fts_{name}")
        db.execute_sql("DROP TABLE message_fts")
        db.execute_sql("DROP TABLE attachment_fts")
    else:
        db.execute_sql("DROP TRIGGER message_search_sync ON message")
        db.execute_sql("DROP TABLE message_search")
        db.execute_sql("DROP INDEX attachment_search")
    db.execute_sql("DELETE FROM migration WHERE name = '0007_search_index'")
    old = intake.ingest(ctx, compose(subject="Kartenterminal offline", body="seit gestern"),
                        source="smtp")  # fmt: skip
    assert store.upgrade().applied == ("0007_search_index",)
    new = intake.ingest(ctx, compose(subject="Kartenterminal again"), source="smtp")
    found = search.find(config, search.Options(text="kartenterminal"))
    assert {r["number"] for r in found.rows} == {old.ticket, new.ticket} and found.total == 2
    assert [r["number"] for r in search.find(config, search.Options(text="gestern")).rows] == [
        old.ticket
    ]


def test_attachments_stored_before_0005_are_kept_and_named_as_before(config: Config) -> None:
    """0005 adds attachment.original_filename and .kept: an older row reads as kept, its
    original name the cleaned one (``attachments list`` shows it like a new one)."""
    open_context(config)
    build_version_1(dialect())
    falsy = "0" if dialect() == "sqlite" else "FALSE"
    db.execute_sql(
        "INSERT INTO message (ticket_id, direction, kind, message_id, from_addr, from_name,"
        " to_addrs, cc_addrs, subject, text, full_text, html, raw_sha256, trace, verified,"
        " created_at) SELECT id, 'in', 'customer', '<old@customer.example>', 'old@customer.example',"
        f" '', '[]', '[]', 'From before', 'x', 'x', '', '', '[]', {falsy}, '2026-01-01 10:00:00'"
        " FROM ticket"
    )
    db.execute_sql(
        "INSERT INTO attachment (message_id, sha256, size, content_type, filename, content_id,"
        f" inline) SELECT id, '{'a' * 64}', 3, 'application/pdf', 'old.pdf', '', {falsy}"
        " FROM message"
    )
    store.upgrade()
    from mailgate.store import attachments

    (row,) = attachments.of_ticket(m.Ticket.get().id)
    assert (row.filename, row.original_filename, row.kept, row.size) == ("old.pdf", "old.pdf", True, 3)


def test_0006_gives_a_version_1_database_the_suspended_queue_and_urgency(config: Config) -> None:
    """Issue 13: the suspended queue's table and a ticket's urgency and impact, on a database
    from before: empty, and its tickets kept with neither set."""
    open_context(config)
    build_version_1(dialect())
    done = store.upgrade()
    assert {"0006_suspended_mail", "0006_urgency_impact"} <= set(done.applied)
    assert {"urgency", "impact"} <= {c.name for c in db.get_columns("ticket")}
    old = db.execute_sql("SELECT urgency, impact FROM ticket WHERE number = 424242").fetchone()
    assert tuple(old) == ("", "")
    columns = {c.name for c in db.get_columns("suspended_mail")}
    assert {"receipt_id", "sender", "subject", "reason", "score", "received_at"} <= columns
    assert db.execute_sql("SELECT COUNT(*) FROM suspended_mail").fetchone()[0] == 0
    assert store.upgrade().applied == ()


def test_0009_adds_the_imap_claims_to_a_database_of_the_release_before(config: Config) -> None:
    """Upgrading a version 1 database creates ``imap_claim``, keyed by account, UIDVALIDITY, UID."""
    open_context(config)
    build_version_1(dialect())
    assert "imap_claim" not in db.get_tables()
    done = store.upgrade()
    assert "0009_imap_claims" in done.applied
    columns = {c.name for c in db.get_columns("imap_claim")}
    assert columns == {"account", "uidvalidity", "uid", "state", "owner", "claimed_at"}
    assert {c for c in db.get_primary_keys("imap_claim")} == {"account", "uidvalidity", "uid"}
    assert m.Ticket.get(m.Ticket.number == 424242).subject == "From before"
    store.close()


def test_0012_gives_the_outbox_of_a_version_1_database_the_webhook_columns(config: Config) -> None:
    """Issue 15: ``target`` and ``event`` on ``outbox_item``; a mail queued before the
    upgrade reads '' for both and is still the mail sender's to take (not a webhook)."""
    from mailgate.store import outbox as outbox_rows
    from mailgate.store import webhooks as hook_rows

    open_context(config)
    build_version_1(dialect())
    p = "?" if store.is_sqlite() else "%s"
    db.execute_sql(
        "INSERT INTO outbox_item (message_id, ticket_id, notice, sender, recipients, content,"
        " automatic, status, attempts, next_attempt_at, last_error, created_at) VALUES"
        " ('<old@x>', 1, 'acknowledgement', 'support@example.org', '[\"old@customer.example\"]',"
        f" {p}, {p}, 'queued', 0, '2026-01-01 10:00:00', '', '2026-01-01 10:00:00')",
        (b"Subject: old\r\n\r\nold\r\n", True),
    )
    done = store.upgrade()
    assert "0012_webhooks" in done.applied
    assert {"target", "event"} <= {c.name for c in db.get_columns("outbox_item")}
    old = db.execute_sql("SELECT target, event FROM outbox_item WHERE message_id = '<old@x>'")
    assert tuple(old.fetchone()) == ("", "")
    now = m.utcnow()
    with store.write_transaction():
        assert hook_rows.claim_due(10, "w", now, now) == []
        assert len(outbox_rows.claim_due(10, "w", now, now)) == 1
def test_0011_adds_api_tokens_to_a_database_of_the_release_before(config: Config) -> None:
    """Upgrading a version 1 database creates ``api_token``: hashes only, one per token."""
    open_context(config)
    build_version_1(dialect())
    assert "api_token" not in db.get_tables()
    done = store.upgrade()
    assert "0011_api_tokens" in done.applied
    columns = {c.name for c in db.get_columns("api_token")}
    assert columns == {"id", "agent_id", "token_hash", "created_at", "last_used_at", "revoked_at"}
    unique = {tuple(i.columns) for i in db.get_indexes("api_token") if i.unique}
    assert ("token_hash",) in unique
    assert db.execute_sql("SELECT COUNT(*) FROM api_token").fetchone()[0] == 0
    assert m.Ticket.get(m.Ticket.number == 424242).subject == "From before"
    store.close()


def test_0014_lists_by_priority_newest_first_from_an_index(config: Config) -> None:
    """A rare priority (``priority=high``) read newest first from its index, not by a scan
    of every ticket along ``updated_at`` (issue 15)."""
    open_context(config)
    store.upgrade()
    indexed = {tuple(i.columns) for i in db.get_indexes("ticket")}
    assert ("priority", "updated_at") in indexed
    if dialect() == "sqlite":
        plan = " ".join(
            str(row[3])
            for row in db.execute_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM ticket WHERE status IN ('resolved')"
                " AND priority IN ('high') ORDER BY updated_at DESC LIMIT 50"
            )
        )
        assert "ticket_priority_updated_at (priority=?)" in plan, plan
        assert "TEMP B-TREE" not in plan, plan
    store.close()


def test_0015_backfills_each_tickets_next_due_time_from_its_running_clocks(
    config: Config,
) -> None:
    """Tickets stored before 0015 get ``next_due_at``: the earliest due time of a clock
    neither met nor paused (NULL when none runs); the "due" sort is read from its index."""
    from mailgate import intake
    from mailgate.store import sla as clock_rows

    ctx = open_context(config)
    store.upgrade()
    first = intake.ingest(ctx, compose(subject="Terminal down"), source="smtp")
    second = intake.ingest(ctx, compose(subject="Invoice"), source="smtp")
    ids = [m.Ticket.get(m.Ticket.number == o.ticket).id for o in (first, second)]
    due = m.utcnow().replace(microsecond=0) + dt.timedelta(hours=3)
    met = ClockRow(ids[1], "resolution", "p", "P", "", "UTC", m.utcnow(), 60, due, None,
                   m.utcnow(), False, 0)  # fmt: skip
    with store.write_transaction():
        clock_rows.replace_clocks(ids[0], [
            ClockRow(ids[0], "resolution", "p", "P", "", "UTC", m.utcnow(), 60, due, None,
                     None, False, 0),
            ClockRow(ids[0], "first_response", "p", "P", "", "UTC", m.utcnow(), 60,
                     due - dt.timedelta(hours=1), None, None, True, 0),  # paused: not running
        ])  # fmt: skip
        clock_rows.replace_clocks(ids[1], [met])
    # The database as it was before 0015.
    db.execute_sql("DROP INDEX ticket_next_due_at")
    db.execute_sql("ALTER TABLE ticket DROP COLUMN next_due_at")
    db.execute_sql("DELETE FROM migration WHERE name = '0015_ticket_next_due'")
    assert store.upgrade().applied == ("0015_ticket_next_due",)
    assert m.Ticket.get_by_id(ids[0]).next_due_at == due
    assert m.Ticket.get_by_id(ids[1]).next_due_at is None
    assert ("next_due_at",) in {tuple(i.columns) for i in db.get_indexes("ticket")}
    if dialect() == "sqlite":
        plan = " ".join(
            str(row[3])
            for row in db.execute_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM ticket WHERE next_due_at IS NOT NULL"
                " ORDER BY next_due_at, id LIMIT 50"
            )
        )
        assert "ticket_next_due_at" in plan and "TEMP B-TREE" not in plan, plan
    store.close()


def shape_of_database() -> dict[str, object]:
    """Tables, columns, indexes, foreign keys, views, triggers and rows of the open database."""
    found: dict[str, object] = {}
    for table in sorted(db.get_tables()):
        columns = [(c.name, c.data_type, c.null, c.primary_key) for c in db.get_columns(table)]
        indexes = sorted((i.name, tuple(i.columns), i.unique) for i in db.get_indexes(table))
        keys = sorted((k.column, k.dest_table, k.dest_column) for k in db.get_foreign_keys(table))
        rows = db.execute_sql(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        found[table] = (columns, indexes, keys, rows)
    found["views"] = sorted(v.name for v in db.get_views())
    if dialect() == "sqlite":
        found["triggers"] = sorted(
            db.execute_sql("SELECT name, sql FROM sqlite_master WHERE type = 'trigger'")
        )
    else:
        found["triggers"] = sorted(
            db.execute_sql(
                "SELECT trigger_name, event_manipulation, event_object_table, action_statement"
                " FROM information_schema.triggers WHERE trigger_schema = current_schema()"
            )
        )
    found["migrations"] = [r[0] for r in db.execute_sql("SELECT name FROM migration ORDER BY name")]
    return found


def test_the_tests_upgraded_database_is_what_upgrade_makes_of_an_empty_one(
    config: Config, tmp_path: Path, database_templates: Any
) -> None:
    """``ctx`` and ``desk`` start on a copy of the worker's upgraded template
    (tests/databases.py), not on an upgrade of their own: the copy must be the same."""
    open_context(config)
    store.upgrade()
    fresh = shape_of_database()
    store.close()
    if dialect() == "sqlite":
        database_templates.copy_sqlite(tmp_path / "copy.db")
        copies: Any = iter([f"sqlite:///{tmp_path / 'copy.db'}"])
    else:
        copies = database_templates.copy_postgresql(os.environ[PG_ENV])
    for url in copies:
        store.open_database(url)
        assert store.upgrade().applied == ()
        assert shape_of_database() == fresh
        store.close()
    assert fresh["migrations"] == [x.name for x in schema.known()]


def test_0016_a_mail_said_again_under_another_message_id_is_still_a_duplicate(
    config: Config,
) -> None:
    """Issue 16: the content fingerprints are indexed only where there is one (a receipt
    is committed without, its processing writes it). A mail received before the upgrade
    is still recognised when it comes again re-encoded under another Message-ID."""
    from mailgate import intake

    ctx = open_context(config)
    store.upgrade()
    raw = compose(subject="Card blocked", message_id="<first@customer.example>")
    first = intake.ingest(ctx, raw, source="smtp")
    # The database as it was before 0016: the index had every receipt, '' too.
    db.execute_sql("DROP INDEX receipt_content_fingerprint")
    db.execute_sql("CREATE INDEX receipt_content_fingerprint ON receipt (content_fingerprint)")
    db.execute_sql("DELETE FROM migration WHERE name = '0016_fewer_pages_per_mail'")
    assert store.upgrade().applied == ("0016_fewer_pages_per_mail",)
    if dialect() == "sqlite":
        index = db.execute_sql(
            "SELECT sql FROM sqlite_master WHERE name = 'receipt_content_fingerprint'"
        ).fetchone()[0]
    else:
        index = db.execute_sql(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'receipt_content_fingerprint'"
            " AND schemaname = current_schema()"
        ).fetchone()[0]
    assert "WHERE" in index and "content_fingerprint" in index, index
    again = raw.replace(b"<first@customer.example>", b"<again@customer.example>")
    outcome = intake.ingest(ctx, again, source="smtp")
    assert (outcome.action, outcome.ticket) == ("duplicate", first.ticket)
    if dialect() == "sqlite":
        plan = " ".join(
            str(row[3])
            for row in db.execute_sql(
                "EXPLAIN QUERY PLAN SELECT ticket_id FROM receipt AS earlier WHERE ? <> ''"
                " AND earlier.content_fingerprint = ? AND earlier.content_fingerprint <> ''"
                " AND earlier.id <> ? ORDER BY earlier.id LIMIT 1",
                ("x", "x", 1),
            )
        )
        assert "receipt_content_fingerprint" in plan, plan
    store.close()
