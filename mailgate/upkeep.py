"""How ``mailgate serve`` looks after itself: its heartbeat, and the reload on SIGHUP.

The heartbeat (every ``HEARTBEAT_SECONDS``, on a thread of its own so a slow mail
never makes a working gateway look dead) records in the database that this serve
is alive and whether its worker runs; a clean stop removes it. ``mailgate check``
and ``mailgate status`` read it (``store/health.py``).

SIGHUP reloads the config file and the templates: the new files are read and
checked off the loop (``reload``, given by the CLI: load, render every template,
mirror agents and teams); when they pass, serve switches to them — the config for
every later mail and job, the templates read in that check, a fresh worker that
reads both, and a new desk process (``web/process.py``) — otherwise the old ones stay
and the log says why. The listener, the
database and the IMAP accounts keep what they were started with until a restart.

Imports the store's health rows, notices (the templates' switch), logs and errors.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import os
import socket
from collections.abc import Callable
from typing import Any, Protocol

from mailgate import notices
from mailgate.config import Config
from mailgate.context import Context
from mailgate.errors import TemporaryFailure
from mailgate.logs import event
from mailgate.store import health
from mailgate.store.db import utcnow
from mailgate.worker import Pool

log = logging.getLogger("mailgate.serve")

HEARTBEAT_SECONDS = 10

Reload = Callable[[], Config]


class Gateway(Protocol):
    """What of ``app.Gateway`` upkeep uses (the core never imports the edge)."""

    ctx: Context
    worker: Pool
    db: concurrent.futures.ThreadPoolExecutor
    stopping: asyncio.Event
    web: Any  # the desk's process (web.process.DeskProcess) or None: renew(why), revive()

    def where(self) -> str: ...


class Upkeep:
    def __init__(self, gateway: Gateway, reload: Reload | None) -> None:
        self.gateway = gateway
        self.reload_config = reload
        self.thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mailgate-beat")
        self.started_at = utcnow()
        self.host = socket.gethostname()
        self.reloading = False

    # --- the heartbeat ---------------------------------------------------------------------

    async def beat(self) -> None:
        await asyncio.get_running_loop().run_in_executor(self.thread, self.heartbeat)
        if self.gateway.web is not None and not self.gateway.stopping.is_set():
            await self.gateway.web.revive()  # a desk that died starts again

    def heartbeat(self) -> None:
        """Record that serve is alive, and its worker's state (on the heartbeat thread).

        A worker that died starts again with the next mail; the heartbeat has the
        database thread start it now, so an idle gateway does not report it gone.
        """
        gateway = self.gateway
        worker = "running" if gateway.worker.pid is not None else "stopped"
        if worker == "stopped" and not gateway.stopping.is_set():
            with contextlib.suppress(RuntimeError):  # the thread is already shut down
                gateway.db.submit(self._revive_worker)
        try:
            health.beat(self.host, os.getpid(), self.started_at, worker, gateway.where())
        except TemporaryFailure as exc:
            event(log, "serve.heartbeat_failed", logging.WARNING, error=str(exc))

    def _revive_worker(self) -> None:
        try:
            self.gateway.worker.warm_up()
        except TemporaryFailure as exc:
            event(log, "worker.start_failed", logging.WARNING, error=str(exc))

    def stop(self) -> None:
        """A clean stop: this process no longer claims to run (from a thread, not the loop)."""
        try:
            self.thread.submit(health.clear, self.host, os.getpid()).result()
        except TemporaryFailure as exc:
            event(log, "serve.heartbeat_failed", logging.WARNING, error=str(exc))
        self.thread.shutdown(wait=True)

    # --- SIGHUP ----------------------------------------------------------------------------

    def hangup(self) -> None:
        """The signal handler (on the loop): start a reload unless one is running."""
        if self.reload_config is None:
            event(log, "serve.sighup_ignored", logging.WARNING, detail="no reload configured")
            return
        if self.reloading:
            event(log, "serve.reload_skipped", detail="a reload is already running")
            return
        self.reloading = True
        asyncio.get_running_loop().create_task(self._reload(self.reload_config))

    async def _reload(self, reload: Reload) -> None:
        gateway = self.gateway
        loop = asyncio.get_running_loop()
        try:
            config = await loop.run_in_executor(None, _read_next, reload)
        except Exception as exc:  # noqa: BLE001 - whatever failed, the old files stay
            reason = str(exc) or type(exc).__name__
            event(log, "serve.reload_failed", logging.WARNING, reason=reason)
            return
        finally:
            self.reloading = False
        gateway.ctx = dataclasses.replace(gateway.ctx, config=config)
        notices.switch_templates()
        # The worker reads config and templates when it starts: a fresh one reads the new.
        with contextlib.suppress(RuntimeError):
            gateway.db.submit(self._restart_worker)
        event(log, "serve.reloaded", config=str(config.path))
        if gateway.web is not None:  # the desk reads the config when it starts: a new one
            await gateway.web.renew("the config was reloaded")

    def _restart_worker(self) -> None:
        self.gateway.worker.restart()
        self._revive_worker()


def _read_next(reload: Reload) -> Config:
    """Run ``reload`` where the templates are read afresh from disk (this thread only)."""
    with notices.next_templates():
        return reload()
