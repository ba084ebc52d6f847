"""Database errors told apart: what each means for the mail at hand, each with its own log line.

"Database unavailable" used to cover everything. The kinds differ in what the caller
must do:

==================  ========================================  ===============================
kind                examples                                  what happens
==================  ========================================  ===============================
busy                SQLite "database is locked"/"busy";       ``TemporaryFailure``: retry; it
                    PostgreSQL lock timeout, deadlock,        does not count as a processing
                    serialisation failure                     attempt
disk_full           "database or disk is full", "No space     ``TemporaryFailure`` (exit 75,
                    left on device"                           451): the MTA keeps the mail
corrupt             "database disk image is malformed",       ``TemporaryFailure`` and an
                    "file is not a database"                  error line: an admin must act
too_many_variables  "too many SQL variables"                  a bug of ours (queries chunk
                                                              their lists): not temporary
unavailable         connection refused or lost, the rest      ``TemporaryFailure``
==================  ========================================  ===============================

Imports ``mailgate.errors`` and the standard library only (the log line is written in
``mailgate.logs``' structured format, which the store may not import).
"""

from __future__ import annotations

import logging

from mailgate.errors import TemporaryFailure

log = logging.getLogger("mailgate.database")

# (kind, lowercased fragments of the driver's message), read top to bottom.
KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("too_many_variables", ("too many sql variables", "too many terms in compound select")),
    ("disk_full", ("database or disk is full", "no space left on device", "disk full")),
    (
        "corrupt",
        (
            "database disk image is malformed",
            "file is not a database",
            "malformed database",
            "invalid page in block",
            "could not read block",
            "data corrupted",
        ),
    ),
    (
        "busy",
        (
            "database is locked",
            "database table is locked",
            "database is busy",
            "lock timeout",
            "could not obtain lock",
            "deadlock detected",
            "could not serialize",
            "lock not available",
        ),
    ),
)

_LOG_LINES = {
    "busy": ("database.busy", logging.WARNING),
    "disk_full": ("database.disk_full", logging.ERROR),
    "corrupt": ("database.corrupt", logging.CRITICAL),
    "too_many_variables": ("database.query_too_large", logging.ERROR),
    "unavailable": ("database.unavailable", logging.WARNING),
}

LABELS = {
    "busy": "database busy",
    "disk_full": "database disk full",
    "corrupt": "database corrupt",
    "too_many_variables": "query with too many SQL variables",
    "unavailable": "database unavailable",
}


def kind_of(exc: BaseException) -> str:
    """Which of ``KINDS`` a database error is ('unavailable' for any other)."""
    text = str(exc).lower()
    for kind, fragments in KINDS:
        if any(f in text for f in fragments):
            return kind
    return "unavailable"


class QueryTooLarge(Exception):
    """A statement had more variables than the database allows: a bug, never temporary."""


def translate(exc: BaseException) -> Exception:
    """The exception to raise for a database error, after its one log line."""
    kind = kind_of(exc)
    name, level = _LOG_LINES[kind]
    first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    log.log(level, name, extra={"mailgate_fields": {"error": first}})
    if kind == "too_many_variables":
        return QueryTooLarge(f"{LABELS[kind]}: {first}")
    return TemporaryFailure(f"{LABELS[kind]}: {first}")


def is_temporary_reason(reason: str) -> bool:
    """A quarantine reason that names a temporary cause (retried automatically)."""
    return reason.startswith(TEMPORARY_PREFIX)


# Quarantine reasons of temporary causes start with this; the recovery job retries them.
TEMPORARY_PREFIX = "temporary: "
