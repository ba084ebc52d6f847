"""Fixtures: every database test runs against a SQLite file AND the real PostgreSQL."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from mailgate import store
from mailgate.config import Config
from mailgate.context import Context, open_context
from mailgate.store import directory
from tests import queued
from tests.support import (
    config_data,
    load_config,
    merge,
    new_schema_name,
    service_missing,
    write_config,
)

if TYPE_CHECKING:
    from tests.relay import Relay

PG_ENV = "MAILGATE_TEST_DATABASE_URL"
pytest_plugins = [
    "tests.databases",
    "tests.relay",
    "tests.dovecot",
    "tests.desk",
    "tests.webdesk",
    "tests.browser",
]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of the test's own: empty, or — for a test that starts from an upgraded
    one (``ctx``, ``smtp_ctx``, ``desk``) — a copy of the worker's upgraded template
    (tests/databases.py)."""
    from tests.databases import wants_upgraded  # a plugin: imported after pytest rewrote it

    upgraded = wants_upgraded(request)
    if request.param == "sqlite":
        path = tmp_path / "mailgate.db"
        if upgraded:
            request.getfixturevalue("database_templates").copy_sqlite(path)
        yield f"sqlite:///{path}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        service_missing(f"PostgreSQL tests need {PG_ENV} (e.g. postgresql://127.0.0.1:5432/test)")
    import psycopg2

    schema = new_schema_name()
    try:
        conn = psycopg2.connect(base)
    except psycopg2.OperationalError as exc:
        service_missing(f"PostgreSQL at {base} is not reachable: {exc}")
    if upgraded:
        conn.close()
        yield from request.getfixturevalue("database_templates").copy_postgresql(base)
        return
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f"CREATE SCHEMA {schema}")
    try:
        sep = "&" if "?" in base else "?"
        yield f"{base}{sep}options=-c%20search_path%3D{schema}"
    finally:
        store.close()
        with conn.cursor() as cur:
            cur.execute(f"DROP SCHEMA {schema} CASCADE")
        conn.close()


@pytest.fixture
def config_path(tmp_path: Path, database_url: str, request: pytest.FixtureRequest) -> Path:
    """A real config file for this test; ``@pytest.mark.config({...})`` adds overrides."""
    marker = request.node.get_closest_marker("config")
    overrides: dict[str, Any] = marker.args[0] if marker else {}
    return write_config(tmp_path / "mailgate.toml", config_data(tmp_path, database_url, overrides))


@pytest.fixture
def config(config_path: Path) -> Config:
    return load_config(config_path)


def open_gateway(config: Config) -> Context:
    """Connect to the test database, upgrade the schema, mirror agents and teams."""
    context = open_context(config)
    store.upgrade()
    with store.write_transaction():
        directory.sync(config)
    return queued.opened(context)


@pytest.fixture
def ctx(config: Config) -> Iterator[Context]:
    """An open gateway on a freshly upgraded database."""
    yield open_gateway(config)
    store.close()


@pytest.fixture
def smtp_ctx(
    tmp_path: Path, database_url: str, relay: Relay, request: pytest.FixtureRequest
) -> Iterator[Context]:
    """A gateway whose outbound transport is the real SMTP relay fixture."""
    marker = request.node.get_closest_marker("config")
    overrides: dict[str, Any] = {
        "outbound": {
            "transport": "smtp",
            "smtp": {"host": relay.host, "port": relay.port, "security": "none", "timeout": 5},
        },
    }
    data = config_data(tmp_path, database_url, overrides)
    if marker:
        merge(data, marker.args[0])
    path = write_config(tmp_path / "mailgate.toml", data)
    yield open_gateway(load_config(path))
    store.close()


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "config(overrides): extra config for the test's gateway")
    compile_the_package()


def compile_the_package() -> None:
    """Byte-compile mailgate once, as installing it does: the suite starts some thousand
    Python processes of ours (the CLI, serve, its ingest and desk workers), and with
    PYTHONDONTWRITEBYTECODE set (or a read-only checkout) each of them compiled all of
    mailgate from source again — a quarter of its start-up CPU. The ``.pyc`` files go
    where Python looks for them (``__pycache__``, ignored by git); an edited source
    makes its ``.pyc`` stale, and Python then compiles that one module again, as ever."""
    import compileall

    import mailgate

    compileall.compile_dir(Path(mailgate.__file__).parent, quiet=2, workers=1)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A test marked ``postgres`` is about several processes on one server: no SQLite run."""
    sqlite_runs = [
        item
        for item in items
        if item.get_closest_marker("postgres")
        and getattr(item, "callspec", None) is not None
        and item.callspec.params.get("database_url") == "sqlite"  # type: ignore[attr-defined]
    ]
    if sqlite_runs:
        config.hook.pytest_deselected(items=sqlite_runs)
        items[:] = [item for item in items if item not in sqlite_runs]


class RunningGateway:
    """``mailgate serve`` in a thread of the test process, on the test's database."""

    def __init__(self, ctx: Context, *, smtp: bool, imap: bool) -> None:
        import asyncio
        import threading

        from mailgate.app import Gateway

        self.gateway = Gateway(ctx, smtp=smtp, imap=imap)
        self.result: list[object] = []
        self.thread = threading.Thread(
            target=lambda: self.result.append(asyncio.run(self.gateway.run())), daemon=True
        )
        self.thread.start()
        if not self.gateway.ready.wait(60):
            raise RuntimeError("the gateway did not start")

    def stop(self) -> None:
        self.gateway.stop()
        self.thread.join(30)
        assert not self.thread.is_alive(), "the gateway did not stop"


@pytest.fixture
def serve_in_thread() -> Iterator[Any]:
    started: list[RunningGateway] = []

    def start(ctx: Context, *, smtp: bool = True, imap: bool = True) -> RunningGateway:
        running = RunningGateway(ctx, smtp=smtp, imap=imap)
        started.append(running)
        return running

    yield start
    for running in started:
        if running.thread.is_alive():
            running.stop()
