"""0007 — full-text search over the threads (subjects, messages, notes, attachment names),
and the indexes by time that reports read.

The index is kept by the database itself (triggers), so it is up to date in the
transaction that stores the message, whatever code path stores it; this
migration builds it for the tickets stored before it (the backfill).

* SQLite: FTS5 tables with *external content* (the text is not stored twice):
  ``message_fts`` over ``message(subject, text)`` and ``attachment_fts`` over
  ``attachment(filename)``; the ``unicode61`` tokenizer folds case and
  diacritics of every script (``Störung`` = ``storung``); a prefix index for
  ``termin*``.
* PostgreSQL: ``message_search(message_id, doc tsvector)`` with a GIN index,
  filled by a trigger (``simple`` configuration: no stemming, every language
  alike), and an expression GIN index over the attachment names. Punctuation is
  made a space first, so ``Beleg_Mai.pdf`` or ``bernd@bigcorp.example`` are words
  as on SQLite (PostgreSQL's parser would keep them whole, as a file or an address).
"""

from __future__ import annotations

from typing import Any

# What people wrote is indexed: not our automatic notices, auto-replies or bounces (a notice
# repeats the subject in every thread, and would crowd out the mail that matters).
SEARCHED_KINDS = ("customer", "agent", "note", "external")

# Reports (``mailgate report``) read the events and tickets of a period by time.
REPORT_INDEXES = (
    'CREATE INDEX IF NOT EXISTS "event_at" ON "event" ("at")',
    'CREATE INDEX IF NOT EXISTS "ticket_created_at" ON "ticket" ("created_at")',
)

SQLITE = (
    """
    CREATE VIRTUAL TABLE IF NOT EXISTS message_fts USING fts5(
        subject, text, content='message', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2', prefix='2 3'
    )
    """,
    """
    CREATE TRIGGER IF NOT EXISTS message_fts_insert AFTER INSERT ON message
    WHEN new.kind IN {kinds} BEGIN
        INSERT INTO message_fts (rowid, subject, text) VALUES (new.id, new.subject, new.text);
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS message_fts_delete AFTER DELETE ON message
    WHEN old.kind IN {kinds} BEGIN
        INSERT INTO message_fts (message_fts, rowid, subject, text)
        VALUES ('delete', old.id, old.subject, old.text);
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS message_fts_unindex BEFORE UPDATE OF subject, text, kind
    ON message WHEN old.kind IN {kinds} BEGIN
        INSERT INTO message_fts (message_fts, rowid, subject, text)
        VALUES ('delete', old.id, old.subject, old.text);
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS message_fts_reindex AFTER UPDATE OF subject, text, kind
    ON message WHEN new.kind IN {kinds} BEGIN
        INSERT INTO message_fts (rowid, subject, text) VALUES (new.id, new.subject, new.text);
    END
    """,
    """
    CREATE VIRTUAL TABLE IF NOT EXISTS attachment_fts USING fts5(
        filename, content='attachment', content_rowid='id',
        tokenize='unicode61 remove_diacritics 2', prefix='2 3'
    )
    """,
    """
    CREATE TRIGGER IF NOT EXISTS attachment_fts_insert AFTER INSERT ON attachment BEGIN
        INSERT INTO attachment_fts (rowid, filename) VALUES (new.id, new.filename);
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS attachment_fts_delete AFTER DELETE ON attachment BEGIN
        INSERT INTO attachment_fts (attachment_fts, rowid, filename)
        VALUES ('delete', old.id, old.filename);
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS attachment_fts_update AFTER UPDATE OF filename ON attachment
    BEGIN
        INSERT INTO attachment_fts (attachment_fts, rowid, filename)
        VALUES ('delete', old.id, old.filename);
        INSERT INTO attachment_fts (rowid, filename) VALUES (new.id, new.filename);
    END
    """,
    # The backfill: index what is stored already.
    "INSERT INTO message_fts (rowid, subject, text) SELECT id, subject, text FROM message"
    " WHERE kind IN {kinds}",
    "INSERT INTO attachment_fts (attachment_fts) VALUES ('rebuild')",
)

POSTGRESQL = (
    """
    CREATE TABLE IF NOT EXISTS message_search (
        message_id INTEGER NOT NULL PRIMARY KEY REFERENCES message (id) ON DELETE CASCADE,
        doc TSVECTOR NOT NULL
    )
    """,
    "CREATE INDEX IF NOT EXISTS message_search_doc ON message_search USING GIN (doc)",
    """
    CREATE OR REPLACE FUNCTION message_search_sync() RETURNS trigger AS $$
    BEGIN
        IF NEW.kind NOT IN {kinds} THEN
            DELETE FROM message_search WHERE message_id = NEW.id;
            RETURN NEW;
        END IF;
        INSERT INTO message_search (message_id, doc)
        VALUES (NEW.id, to_tsvector('simple', regexp_replace(coalesce(NEW.subject, '') || ' '
                                              || coalesce(NEW.text, ''), '[[:punct:]]+', ' ', 'g')))
        ON CONFLICT (message_id) DO UPDATE SET doc = EXCLUDED.doc;
        RETURN NEW;
    END
    $$ LANGUAGE plpgsql
    """,
    "DROP TRIGGER IF EXISTS message_search_sync ON message",
    """
    CREATE TRIGGER message_search_sync AFTER INSERT OR UPDATE OF subject, text, kind ON message
    FOR EACH ROW EXECUTE FUNCTION message_search_sync()
    """,
    """
    CREATE INDEX IF NOT EXISTS attachment_search ON attachment
    USING GIN (to_tsvector('simple'::regconfig,
                           regexp_replace(filename, '[[:punct:]]+', ' ', 'g')))
    """,
    # The backfill: index what is stored already.
    """
    INSERT INTO message_search (message_id, doc)
    SELECT id, to_tsvector('simple', regexp_replace(
        coalesce(subject, '') || ' ' || coalesce(text, ''), '[[:punct:]]+', ' ', 'g'))
    FROM message WHERE kind IN {kinds} ON CONFLICT (message_id) DO NOTHING
    """,
)


def apply(db: Any, dialect: str) -> None:
    kinds = "(" + ", ".join(f"'{k}'" for k in SEARCHED_KINDS) + ")"
    for statement in (*REPORT_INDEXES, *(SQLITE if dialect == "sqlite" else POSTGRESQL)):
        db.execute_sql(statement.replace("{kinds}", kinds))
