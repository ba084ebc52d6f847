"""The databases of the tests: an empty one, or a copy of the worker's upgraded template.

``database_url`` (tests/conftest.py) gives every database test a database of its own.
Most of them start with ``open_gateway`` — ``store.upgrade()`` on an empty database —
and on PostgreSQL that upgrade is some 150 DDL statements: half a second of the
server's CPU per test, for some 300 tests, on the cores the suite shares with it.

So each xdist worker upgrades one template per dialect once, with the code under test
and exactly as ``open_gateway`` would (``open_context`` + ``store.upgrade()``), and a
test that starts from an upgraded database (it uses one of ``MIGRATED_FOR``) gets a
copy: the SQLite file copied into its tmp_path, or on PostgreSQL a database of its own
made by ``CREATE DATABASE ... TEMPLATE`` (a file copy on the server, made ahead by a
thread while the test before runs, and dropped after the test). ``open_gateway`` still runs ``store.upgrade()`` and finds nothing pending, as on
any upgraded database. Every other test — those about upgrading (tests/test_migrations.py,
``mailgate db upgrade``), and those that start serve or the CLI on ``database_url`` —
keeps getting an empty database: a new SQLite file, or a new schema in the database of
``MAILGATE_TEST_DATABASE_URL``. tests/test_migrations.py checks that a copy has the
shape a fresh upgrade gives.
"""

from __future__ import annotations

import contextlib
import json
import queue
import shutil
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

from mailgate import store
from mailgate.context import open_context
from tests.support import config_data, load_config, write_config

# Fixtures that open the gateway on their ``database_url`` before the test sees it, and
# ``upgraded_database``: what a test module asks for when its tests (or its fixture) call
# ``open_gateway`` on ``database_url`` before anything else touches that database.
MIGRATED_FOR = frozenset({"ctx", "smtp_ctx", "desk", "upgraded_database"})
# Threads of a worker that drop its used databases (``Templates._drop_later``).
DROPPERS = 4


def wants_upgraded(request: pytest.FixtureRequest) -> bool:
    return not MIGRATED_FOR.isdisjoint(request.fixturenames)


def url_of_database(base: str, name: str) -> str:
    """``base`` (the server of MAILGATE_TEST_DATABASE_URL) with database ``name``."""
    return urlunsplit(urlsplit(base)._replace(path=f"/{name}"))


def upgrade(directory: Path, url: str) -> None:
    """What ``open_gateway`` does to an empty database before the directory sync."""
    directory.mkdir(parents=True, exist_ok=True)
    config = load_config(write_config(directory / "template.toml", config_data(directory, url)))
    open_context(config)
    try:
        store.upgrade()
    finally:
        store.close()


class Templates:
    """The upgraded templates of one xdist worker, made on first use."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._sqlite: Path | None = None
        self._postgresql: str | None = None
        self._server: Any = None  # the psycopg2 connection that creates the databases
        self._base = ""  # MAILGATE_TEST_DATABASE_URL, once a PostgreSQL test ran
        self._doomed: queue.Queue[str | None] = queue.Queue()
        self._droppers: list[threading.Thread] = []
        self.failed_drops: list[str] = []
        # Copies made ahead by a thread of their own (see ``_make_copies``).
        self._copies: queue.Queue[str | BaseException] = queue.Queue(maxsize=1)
        self._maker: threading.Thread | None = None
        self._maker_server: Any = None  # its connection, to cancel a copy in the making
        self._closing = False
        # Used copies not dropped yet, queued or in a dropper's hands (``close()`` hands
        # them on); a name leaves once its DROP DATABASE has ended.
        self._pending: set[str] = set()
        self._pending_lock = threading.Lock()

    def sqlite(self) -> Path:
        if self._sqlite is None:
            path = self.directory / "sqlite" / "template.db"
            upgrade(path.parent, f"sqlite:///{path}")
            # Closed: everything is in the main file (WAL checkpointed), safe to copy.
            assert not Path(f"{path}-wal").exists() or not Path(f"{path}-wal").stat().st_size
            self._sqlite = path
        return self._sqlite

    def copy_sqlite(self, target: Path) -> None:
        shutil.copyfile(self.sqlite(), target)

    def postgresql(self, base: str) -> str:
        """The template database's name, on the server of ``base``."""
        if self._postgresql is None:
            import psycopg2

            self._base = base
            self._server = psycopg2.connect(base)
            self._server.autocommit = True
            name = f"mg_template_{uuid.uuid4().hex[:12]}"
            with self._server.cursor() as cur:
                cur.execute(f"CREATE DATABASE {name}")
            self._postgresql = name
            upgrade(self.directory / "postgresql", url_of_database(base, name))
        return self._postgresql

    def copy_postgresql(self, base: str) -> Iterator[str]:
        """A database of its own for one test, upgraded; dropped after the test."""
        template = self.postgresql(base)
        if self._maker is None:
            self._maker = threading.Thread(
                target=self._make_copies, args=(base, template), daemon=True
            )
            self._maker.start()
        made = self._copies.get()
        if isinstance(made, BaseException):
            self._maker = None  # it has ended: the next test starts another
            raise made
        name = made
        try:
            yield url_of_database(base, name)
        finally:
            store.close()
            self._drop_later(base, name)

    def _make_copies(self, base: str, template: str) -> None:
        """Keep the next tests' copies made while this one runs: ``CREATE DATABASE ...
        TEMPLATE`` writes and syncs the whole database (0.2 to 2 s on a busy server),
        which a test waited for in its setup. One copy waits in the queue, one more in
        hand; ``close()`` drops those no test took."""
        import psycopg2

        try:
            server = psycopg2.connect(base)
            server.autocommit = True
        except psycopg2.Error as exc:
            self._copies.put(exc)
            return
        self._maker_server = server
        try:
            while not self._closing:
                name = f"mg_test_{uuid.uuid4().hex[:16]}"
                try:
                    with server.cursor() as cur:
                        cur.execute(f"CREATE DATABASE {name} TEMPLATE {template}")
                except psycopg2.Error as exc:
                    self._copies.put(exc)
                    return
                self._copies.put(name)
        finally:
            server.close()

    def _drop_later(self, base: str, name: str) -> None:
        """DROP DATABASE in a thread of its own: on PostgreSQL up to 15 it waits for a
        checkpoint of the whole server (seconds on a busy one), which the next test
        need not wait for. Several at once: their waits overlap (8 drops took 3 s one
        after another, 1.1 s in four threads), so they keep up with the tests instead of
        piling up for the end. ``close()`` reports any that failed."""
        if not self._droppers:
            self._droppers = [
                threading.Thread(target=self._drop_all, args=(base,), daemon=True)
                for _ in range(DROPPERS)
            ]
            for dropper in self._droppers:
                dropper.start()
        with self._pending_lock:
            self._pending.add(name)
        self._doomed.put(name)

    def _drop_all(self, base: str) -> None:
        import psycopg2

        server = psycopg2.connect(base)
        server.autocommit = True
        try:
            while (name := self._doomed.get()) is not None:
                try:
                    drop_database(server, name)
                except psycopg2.Error as exc:
                    self.failed_drops.append(f"{name}: {exc}")
                with self._pending_lock:
                    self._pending.discard(name)
        finally:
            server.close()

    def close(self) -> None:
        """Hands every database not dropped yet to a process of its own and returns.

        Each DROP DATABASE waits for a checkpoint of the whole server, and at the end of
        the session a worker's queue still held the copies of its last tests, the unused
        copies and the template: the last worker waited a minute for them (56 to 76 s
        measured) while no test ran, and so did ``make test``; a copy in the making or a
        drop in hand alone took seconds more on a loaded server. Now the copy in the
        making is cancelled, and everything else — the drops in hand included, which
        finish or not when this process exits (``IF EXISTS`` makes a second drop
        harmless) — goes to ``drop_in_background``, which outlives the session and
        writes any it could not drop to ``DROPS_FAILED`` in this worker's directory."""
        self._closing = True
        rest: list[str] = []
        if self._maker_server is not None:
            with contextlib.suppress(Exception):
                self._maker_server.cancel()  # CREATE DATABASE is undone, nothing is left
        if self._maker is not None:
            while self._maker.is_alive():  # it may wait to put one more: take it
                with contextlib.suppress(queue.Empty):
                    rest.extend(_names(self._copies.get(timeout=0.1)))
            while not self._copies.empty():
                rest.extend(_names(self._copies.get_nowait()))
        with contextlib.suppress(queue.Empty):
            while True:
                self._doomed.get_nowait()  # in ``_pending`` too
        for _ in self._droppers:
            self._doomed.put(None)
        with self._pending_lock:
            rest.extend(self._pending)
        if self._server is not None:
            if self._postgresql is not None:
                rest.append(self._postgresql)
            self._server.close()
            if rest:
                drop_in_background(self._base, rest, self.directory / DROPS_FAILED)
        assert not self.failed_drops, f"test databases not dropped: {self.failed_drops}"


def _names(made: str | BaseException | None) -> list[str]:
    return [made] if isinstance(made, str) else []


# The file where ``drop_in_background`` lists the databases it could not drop.
DROPS_FAILED = "drops-failed.txt"
_DROP_REST = (
    "import sys, json; sys.path[:0] = json.loads(sys.argv[1]); "
    "from tests.databases import drop_rest; drop_rest(*json.loads(sys.argv[2]))"
)
# Processes of ``drop_in_background``, kept so that none is collected while it runs.
_background: list[subprocess.Popen[bytes]] = []


def drop_in_background(base: str, names: list[str], failures: Path) -> None:
    """``drop_rest`` in a process of its own session, which the test run does not wait for."""
    arguments = [json.dumps(sys.path), json.dumps([base, names, str(failures)])]
    process = subprocess.Popen(
        [sys.executable, "-c", _DROP_REST, *arguments],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    _background.append(process)


def drop_rest(base: str, names: list[str], failures: str) -> None:
    """Drops ``names`` over ``DROPPERS`` connections (their checkpoints overlap); those that
    fail are written to ``failures``."""
    import psycopg2

    todo: queue.Queue[str] = queue.Queue()
    for name in names:
        todo.put(name)
    failed: list[str] = []

    def drop_all() -> None:
        try:
            server = psycopg2.connect(base)
        except psycopg2.Error as exc:
            failed.append(f"connect: {exc}")
            return
        server.autocommit = True
        try:
            while True:
                try:
                    name = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    drop_database(server, name)
                except psycopg2.Error as exc:
                    failed.append(f"{name}: {exc}")
        finally:
            server.close()

    threads = [threading.Thread(target=drop_all) for _ in range(min(DROPPERS, len(names)))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failed or not todo.empty():
        Path(failures).write_text("".join(f"{line}\n" for line in failed))


def drop_database(server: Any, name: str) -> None:
    # A gateway thread or a serve of the test may not have closed its connection yet:
    # those must not keep the database (13+: WITH (FORCE) ends them, as DROP SCHEMA
    # ignored idle connections).
    force = " WITH (FORCE)" if server.server_version >= 130000 else ""
    with server.cursor() as cur:
        cur.execute(f"DROP DATABASE IF EXISTS {name}{force}")


@pytest.fixture
def upgraded_database() -> None:
    """Makes ``database_url`` a copy of the upgraded template (see ``MIGRATED_FOR``)."""


@pytest.fixture(scope="session")
def database_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    templates = Templates(tmp_path_factory.mktemp("templates"))
    try:
        yield templates
    finally:
        templates.close()
