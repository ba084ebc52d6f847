"""The schema: named migrations, found by themselves, applied once each under a lock.

``upgrade()`` applies every module of ``store/migrations/`` that the ``migration``
table does not name yet, in name order, and records it — all in one transaction
holding the schema lock (an advisory lock on PostgreSQL, an EXCLUSIVE transaction
on SQLite), so three processes starting at once never race each other's DDL and
``mailgate db upgrade`` is safe to run twice. ``require_schema()`` refuses to work
on a database with pending migrations, or with migrations this mailgate does not
know (a newer mailgate migrated it).

The schema *version* printed for admins is the number of migrations applied; it
equals the old single version number for the databases that had one (version 1 =
``0001_initial``). Imports peewee and ``store.db``.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import peewee as pw

from mailgate.errors import ConfigError, TemporaryFailure
from mailgate.store import migrations as migrations_package
from mailgate.store.db import db, is_sqlite, utcnow

LOG_TABLE = "migration"
_LOCK_KEY = 0x6D61696C  # "mail": the advisory lock every mailgate process agrees on
# How long an upgrade waits for another process's (`mailgate db upgrade --wait`).
LOCK_WAIT_SECONDS = 300.0

log = logging.getLogger("mailgate.database")


@dataclass(frozen=True)
class Migration:
    name: str
    apply: Callable[[Any, str], None]
    summary: str


@dataclass(frozen=True)
class Upgrade:
    """What ``upgrade()`` found and did; the versions are counts of applied migrations."""

    before: tuple[str, ...]
    applied: tuple[str, ...]

    @property
    def version_before(self) -> int:
        return len(self.before)

    @property
    def version(self) -> int:
        return len(self.before) + len(self.applied)


def known() -> list[Migration]:
    """Every migration module shipped with this mailgate, in name order."""
    found = []
    for info in sorted(pkgutil.iter_modules(migrations_package.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{migrations_package.__name__}.{info.name}")
        found.append(Migration(info.name, _apply_function(module), _summary(module)))
    return found


def _apply_function(module: ModuleType) -> Callable[[Any, str], None]:
    apply = getattr(module, "apply", None)
    if not callable(apply):
        raise RuntimeError(f"migration {module.__name__} has no apply(db, dialect) function")
    return apply  # type: ignore[no-any-return]


def _summary(module: ModuleType) -> str:
    return (module.__doc__ or "").strip().splitlines()[0] if module.__doc__ else ""


def models() -> list[type[Any]]:
    """Every model class of the store, including those of capability modules."""
    import mailgate.store as package
    from mailgate.store.models import BaseModel

    for info in pkgutil.iter_modules(package.__path__):
        if not info.ispkg:
            importlib.import_module(f"{package.__name__}.{info.name}")
    found: list[type[Any]] = []
    todo = list(BaseModel.__subclasses__())
    while todo:
        model = todo.pop(0)
        found.append(model)
        todo.extend(model.__subclasses__())
    return found


def dialect() -> str:
    return "sqlite" if is_sqlite() else "postgresql"


def applied() -> list[str]:
    """The migrations this database has run, in name order ([] for an empty database)."""
    if not db.table_exists(LOG_TABLE):
        return _adoptable()
    return [str(r[0]) for r in db.execute_sql(f"SELECT name FROM {LOG_TABLE} ORDER BY name")]


def _adoptable() -> list[str]:
    """A database from before named migrations counts as having run what it has."""
    if not db.table_exists("schema_version"):
        return []
    version = db.execute_sql("SELECT MAX(version) FROM schema_version").fetchone()[0]
    return ["0001_initial"] if version == 1 else []


def pending() -> tuple[list[str], list[str]]:
    """(pending migrations, applied migrations this mailgate does not know)."""
    try:
        done = applied()
    except (pw.OperationalError, pw.InterfaceError) as exc:
        raise TemporaryFailure(f"database unavailable: {exc}") from exc
    names = [m.name for m in known()]
    return [n for n in names if n not in done], [n for n in done if n not in names]


def upgrade(wait: float = LOCK_WAIT_SECONDS) -> Upgrade:
    """Create or migrate the schema; safe to run twice and from several processes at once.

    Another process holding the schema lock is waited for ``wait`` seconds at most, with
    a line in the log naming it; after that a ``TemporaryFailure`` says who holds it."""
    with _schema_lock(wait):
        db.execute_sql(
            f"CREATE TABLE IF NOT EXISTS {LOG_TABLE}"
            " (name VARCHAR(200) NOT NULL PRIMARY KEY, applied_at VARCHAR(40) NOT NULL)"
        )
        done = [str(r[0]) for r in db.execute_sql(f"SELECT name FROM {LOG_TABLE} ORDER BY name")]
        if not done:
            done = _adoptable()  # a version-1 database ran 0001 before it had a name
            for name in done:
                _record(name)
        migrations = known()
        unknown = sorted(set(done) - {m.name for m in migrations})
        if unknown:
            raise ConfigError(
                f"the database has migrations this mailgate does not know ({', '.join(unknown)});"
                " upgrade mailgate"
            )
        now_applied = []
        for migration in migrations:
            if migration.name in done:
                continue
            migration.apply(db, dialect())
            _record(migration.name)
            now_applied.append(migration.name)
        return Upgrade(tuple(done), tuple(now_applied))


def _record(name: str) -> None:
    db.execute_sql(
        f"INSERT INTO {LOG_TABLE} (name, applied_at) VALUES ({_param()}, {_param()})",
        (name, utcnow().isoformat(" ", "seconds")),
    )


def _param() -> str:
    return "?" if is_sqlite() else "%s"


@contextmanager
def _schema_lock(wait: float) -> Iterator[None]:
    # Three processes starting at once must not race each other's CREATE TABLE.
    if is_sqlite():
        with db.atomic("EXCLUSIVE"):
            yield
        return
    with db.atomic():
        if not db.execute_sql("SELECT pg_try_advisory_xact_lock(%s)", (_LOCK_KEY,)).fetchone()[0]:
            _wait_for_lock(wait)
        yield


def _wait_for_lock(wait: float) -> None:
    """Wait, visibly and for ``wait`` seconds at most, for another process's schema lock.

    A process that died mid-upgrade releases it with its connection; one that hangs in
    an open transaction (a script, a debugger) would otherwise stall every start."""
    holder = _lock_holder()
    log.warning("waiting up to %.0f s for another process's schema upgrade (%s)", wait, holder)
    db.execute_sql(f"SET LOCAL lock_timeout = '{max(1, int(wait * 1000))}ms'")
    try:
        db.execute_sql("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
    except (pw.OperationalError, pw.InternalError) as exc:
        if "lock timeout" not in str(exc):
            raise
        raise TemporaryFailure(
            f"another process has held the schema lock for over {wait:.0f} s ({holder});"
            " end it or wait, then run `mailgate db upgrade` again"
        ) from None
    db.execute_sql("SET LOCAL lock_timeout = DEFAULT")


def _lock_holder() -> str:
    """Who holds the schema lock, as far as the server tells (pid, program, state)."""
    row = db.execute_sql(
        "SELECT a.pid, a.application_name, a.state, a.client_addr,"
        " EXTRACT(EPOCH FROM now() - a.xact_start)"
        " FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = 0 AND l.objid = %s"
        " AND l.objsubid = 1 AND l.database = (SELECT oid FROM pg_database"
        " WHERE datname = current_database()) LIMIT 1",
        (_LOCK_KEY,),
    ).fetchone()
    if row is None:
        return "holder not visible"
    pid, program, state, client, seconds = row
    where = f" from {client}" if client else ""
    age = f", transaction open {float(seconds):.0f} s" if seconds is not None else ""
    return f"server pid {pid}{where}, {program or 'unnamed program'}, {state}{age}"


def require_schema() -> None:
    """Refuse to work on a database that `mailgate db upgrade` has not prepared."""
    waiting, unknown = pending()
    if unknown:
        raise ConfigError(
            f"the database has migrations this mailgate does not know ({', '.join(unknown)});"
            " upgrade mailgate"
        )
    if waiting:
        raise ConfigError(
            f"database schema is not up to date, pending migrations: {', '.join(waiting)}:"
            " run `mailgate db upgrade`"
        )


def schema_status() -> tuple[bool, str]:
    """(up to date, one line for ``mailgate check``)."""
    waiting, unknown = pending()
    version = len(applied())
    if unknown:
        return False, (
            f"schema version {version}, with migrations this mailgate does not know "
            f"({', '.join(unknown)}): upgrade mailgate"
        )
    if waiting:
        return False, (
            f"schema version {version}, pending migrations: {', '.join(waiting)}:"
            " run `mailgate db upgrade`"
        )
    return True, f"schema version {version}"
