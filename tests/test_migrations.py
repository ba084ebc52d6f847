"""The schema as named migrations: found by themselves, applied once, safe from many processes.

A database that mailgate created before migrations had names (schema version 1,
built here from the DDL that release ran: ``tests/data/schema_v1_*.sql``) must
upgrade in place and keep its tickets.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailgate import store
from mailgate.config import Config
from mailgate.context import open_context
from mailgate.errors import ConfigError
from mailgate.store import migrations, schema
from mailgate.store import models as m
from mailgate.store.db import db
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
