"""``mailgate serve``: the composition root of the long-running gateway.

One asyncio loop runs the SMTP/LMTP listener and the scheduler; one thread per
IMAP account runs its poller; all ingest work goes to ONE worker process
(``worker.py``: a second core, and a crash there is not a crash here), reached
through one database thread so the loop never waits. The outbox is delivered
by a scheduled job in its own thread, kicked right after a mail was stored, so
an acknowledgement leaves within seconds.

SIGTERM/SIGINT: stop accepting, let the mails in flight finish, close the IMAP
sessions, let a running delivery finish, exit 0. SIGHUP reloads the config and the
templates when the new files pass the check (``upkeep.py``, with the heartbeat).

One mail never stalls intake: each runs in the worker under
``gateway.max_processing_seconds``; one that overruns it is quarantined "took too
long" by a fresh worker, and the mails behind it go on. ``kill -9`` loses nothing:
a mail got its 250 only after its transaction committed, an IMAP mail is moved
only after it was stored, and interrupted receipts are finished by the
recovery job, which runs at start.

Scheduled jobs are a table (``PERIODIC``): the outbox, webhooks, recovery, pruning, and the
due work of ``mailgate jobs run`` (SLA warnings and breaches, reminders,
auto-close) every ``jobs.due_seconds``, in a thread of its own.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import datetime as dt
import hmac
import logging
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from mailgate import outbox, spool, store, systemd, webhooks
from mailgate.config import Config, ImapAccount, read_password
from mailgate.context import Context
from mailgate.envelope import Envelope, Outcome
from mailgate.errors import ConfigError, TemporaryFailure
from mailgate.logs import event, redact_url
from mailgate.metrics import Metrics
from mailgate.store import imapclaims, ledger
from mailgate.transports import smtp as smtp_transport
from mailgate.upkeep import HEARTBEAT_SECONDS, Reload, Upkeep
from mailgate.worker import Pool, handoff, heap

if TYPE_CHECKING:
    from mailgate.transports import imap as imap_transport

log = logging.getLogger("mailgate.serve")

SHUTDOWN_GRACE = 10.0
PAGE_CACHE_KIB = 2000
KICK_DELAY = 0.5


@dataclass(frozen=True)
class Periodic:
    """A scheduled job: ``run(ctx)`` every ``seconds(config)``, on the named thread."""

    name: str
    seconds: Callable[[Config], int]
    run: Callable[[Context], Any]
    thread: str  # "db" (the database thread), "outbox", "webhooks", "jobs", or "worker" (ingest)


def _deliver(ctx: Context) -> outbox.Report:
    report = outbox.deliver(ctx.config)
    if report.sent or report.failed:
        event(
            log, "outbox.delivered", sent=report.sent, deferred=report.retried, failed=report.failed
        )
    return report


def _due_work(ctx: Context) -> None:
    """What ``mailgate jobs run`` does: SLA warnings and breaches, reminders, auto-close."""
    from mailgate import jobs

    report = jobs.run(ctx)
    if report.done or report.failed:
        event(log, "jobs.ran", done=len(report.done), failed=len(report.failed))


def _prune(ctx: Context) -> None:
    from mailgate import notices

    notices.prune(ctx.config)


PERIODIC: list[Periodic] = [
    Periodic("outbox", lambda c: c.jobs.outbox_seconds, _deliver, "outbox"),
    # Webhooks on their own thread: a slow receiver never holds up a notice.
    Periodic("webhooks", lambda c: c.jobs.outbox_seconds, webhooks.deliver_for, "webhooks"),
    # Runs in a worker, which imports it by name: from spool.py, not from here (this
    # module would bring the listener, the scheduler and the IMAP client into it).
    Periodic("recover", lambda c: c.jobs.recover_seconds, spool.recover, "worker"),
    Periodic("prune", lambda c: 3600, _prune, "db"),
    Periodic("due", lambda c: c.jobs.due_seconds, _due_work, "jobs"),
]


class Gateway:
    """The running gateway: listener, pollers, scheduler, and the threads they share."""

    def __init__(
        self, ctx: Context, *, smtp: bool = True, imap: bool = True, reload: Reload | None = None
    ) -> None:
        self.ctx = ctx
        # serve's own connections (outbox, jobs, webhooks, heartbeat) read little:
        # a small page cache each (bench/memory.py; ingest runs in the workers).
        store.limit_page_cache(PAGE_CACHE_KIB)
        self.with_smtp = smtp and ctx.config.listener.enabled
        self.with_imap = imap
        self.db = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mailgate-db")
        # Ingest runs in worker processes (worker/); the loop and IMAP threads hand mails over.
        self.worker = Pool(ctx.config.path, ctx.config.gateway.ingest_workers)
        self.sender = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mailgate-outbox")
        self.hooks = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mailgate-hooks")
        # Due work has a thread (and connection) of its own: a long catch-up after
        # downtime never holds up the mail.
        self.jobs = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="mailgate-jobs")
        self.imap_stop = threading.Event()
        self.pollers: list[imap_transport.Poller] = []
        self.server: asyncio.AbstractServer | None = None
        self.counter: smtp_transport.Counter | None = None
        self.scheduler: AsyncIOScheduler | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.stopping = asyncio.Event()
        self.ready = threading.Event()
        self.upkeep = Upkeep(self, reload)  # the heartbeat, and SIGHUP's reload
        # Counted only when somebody can read the counts: /metrics, or the desk's.
        shown = bool(ctx.config.metrics.listen or ctx.config.web.listen)
        self.metrics = Metrics(ctx.config, counting=shown)
        self.web: Any = None  # the desk (web.process.DeskProcess) when [web] listen is set

    # --- the database thread -------------------------------------------------------------

    def in_db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run ``fn`` in the database thread and wait (for threads other than the loop)."""
        return self.db.submit(fn, *args, **kwargs).result()

    async def ingest(self, raw: bytes, envelope: Envelope) -> Outcome:
        """One mail from the listener: handed to a worker straight from the loop, which
        awaits the answer without a thread of its own (``worker/pool.py``)."""
        path = envelope.spool
        if path:
            envelope = dataclasses.replace(envelope, spool="")
        outcome: Outcome = await asyncio.wrap_future(
            self._in_worker(raw, path, "smtp", None, envelope)
        )
        self.kick_outbox(in_loop=True)
        return outcome

    def ingest_in_worker(
        self, raw: bytes, source: str, mailbox: str | None, envelope: Envelope | None
    ) -> Outcome:
        """One mail in the worker, under the per-mail deadline (from a thread, never the loop).

        A big mail goes as a file: the listener's own (``envelope.spool``), else one
        written here (and removed after)."""
        path = envelope.spool if envelope is not None else ""
        own = spool.write(self.ctx, raw) if not path and len(raw) > spool.SPOOL_ABOVE else None
        if envelope is not None and envelope.spool:
            envelope = dataclasses.replace(envelope, spool="")
        try:
            outcome: Outcome = self._in_worker(
                raw, str(own or path), source, mailbox, envelope
            ).result()
            return outcome
        finally:
            if own is not None:
                own.unlink(missing_ok=True)

    def _in_worker(
        self, raw: bytes, path: str, source: str, mailbox: str | None, envelope: Envelope | None
    ) -> concurrent.futures.Future[Outcome]:
        if self.web is not None:  # mail is arriving: the desk keeps to its share (web/yielding.py)
            self.web.mail_arrives()
        return handoff.ingest(
            self.worker, self.metrics, self.ctx.config.gateway.max_processing_seconds,
            raw, path, source, mailbox, envelope,
        )  # fmt: skip

    def check_login(self, login: str, password: str) -> str | None:
        """SMTP AUTH for agents: the agent's key (or address) and its password."""
        config = self.ctx.config
        agent = config.agent(login) or config.agent_for(login)
        if agent is None or not (agent.smtp_password_env or agent.smtp_password_file):
            return None
        try:
            expected = read_password(
                agent.smtp_password_env,
                agent.smtp_password_file,
                f"agent[{agent.key}].smtp_password",
            )
        except ConfigError:
            return None
        if expected and hmac.compare_digest(expected.encode(), password.encode()):
            return agent.key
        return None

    def accepts(self, address: str) -> bool:
        return self.ctx.config.mailbox_for([address]) is not None

    def kick_outbox(self, *, in_loop: bool = False) -> None:
        """Deliver soon: a new mail usually queued an acknowledgement (and webhooks)."""
        if self.loop is None or self.scheduler is None:
            return

        def kick() -> None:
            # At most one delivery run per KICK_DELAY: a burst of mail is sent in batches.
            assert self.scheduler is not None
            soon = _now() + dt.timedelta(seconds=KICK_DELAY)
            for name in ("outbox", "webhooks"):
                job = self.scheduler.get_job(name)
                if job is not None and (job.next_run_time is None or job.next_run_time > soon):
                    job.modify(next_run_time=soon)

        if in_loop:
            kick()  # the listener's mail, answered in the loop: no wake-up through its self-pipe
        else:
            self.loop.call_soon_threadsafe(kick)

    # --- IMAP sink (called from poller threads) -------------------------------------------

    def imap_ingest(self, raw: bytes, account: ImapAccount) -> Outcome:
        outcome = self.ingest_in_worker(raw, "imap", account.mailbox or None, None)
        self.kick_outbox()
        return outcome

    # --- running -------------------------------------------------------------------------

    async def run(self) -> int:
        self.loop = asyncio.get_running_loop()
        heap.tune()  # before the threads start (worker/heap.py)
        for sig in (signal.SIGTERM, signal.SIGINT):
            # Only the main thread can take signals; embedded (tests) it is stopped by stop().
            with contextlib.suppress(ValueError, RuntimeError):
                self.loop.add_signal_handler(sig, self.stopping.set)
        with contextlib.suppress(ValueError, RuntimeError):
            self.loop.add_signal_handler(signal.SIGHUP, self.upkeep.hangup)
        try:
            return await self._run()
        finally:
            # However serve ends (a port in use, a bug), the worker and desk do not stay behind.
            if self.web is not None:
                await self.web.stop()
            await self.loop.run_in_executor(None, self.worker.close)

    async def _run(self) -> int:
        assert self.loop is not None
        await self.loop.run_in_executor(self.db, self.worker.warm_up)
        if self.with_smtp:
            await self._start_listener()
        if self.with_imap:
            self._start_pollers()
        self._start_scheduler()
        await self.upkeep.beat()
        metrics = self.metrics.start()
        if self.ctx.config.web.listen:
            from mailgate.web import process

            # A child process at a lower priority, started from this (the loop's) thread:
            # the listener keeps the CPU while agents browse (mailgate/web/process.py).
            self.web = process.spawn(self.ctx, self.metrics)
            await self.loop.run_in_executor(None, self.web.wait_ready)
        event(
            log,
            "serve.started",
            smtp=self.where(),
            metrics=metrics or "off",
            web=self.web.url if self.web is not None else "off",
            imap=len(self.pollers),
            database=redact_url(self.ctx.config.database.url),
        )
        self.ready.set()
        systemd.notify("READY=1")
        watchdog = systemd.start_watchdog()  # WATCHDOG=1 from this loop while it turns
        await self.stopping.wait()
        systemd.notify("STOPPING=1")
        await self.shutdown()
        if watchdog is not None:
            watchdog.cancel()
        return 0

    def stop(self) -> None:
        """Ask a gateway running in another thread to shut down."""
        if self.loop is not None:
            self.loop.call_soon_threadsafe(self.stopping.set)

    def where(self) -> str:
        """Where mail comes in: the listener's address or socket, or "off"."""
        if not self.with_smtp:
            return "off"
        listener = self.ctx.config.listener
        return listener.socket or f"{listener.host}:{listener.port}"

    async def _start_listener(self) -> None:
        config = self.ctx.config
        listener = config.listener
        options = smtp_transport.ListenerOptions(
            host=listener.host,
            port=listener.port,
            socket_path=listener.socket,
            socket_mode=int(listener.socket_mode, 8) if listener.socket_mode else None,
            socket_group=listener.socket_group,
            lmtp=listener.protocol == "lmtp",
            hostname=listener.hostname or config.gateway.domain,
            max_message_size=config.gateway.max_message_size,
            max_connections=listener.max_connections,
            tls=(
                smtp_transport.tls_context(listener.tls_cert, listener.tls_key)
                if listener.tls_cert
                else None
            ),
            require_tls=listener.require_tls,
            check_login=self.check_login if _agents_may_log_in(config) else None,
            spool_dir=str(spool.directory(self.ctx)),
        )
        with contextlib.suppress(OSError):  # else each big mail is 451, logged
            spool.directory(self.ctx).mkdir(parents=True, exist_ok=True)
        try:
            self.server, self.counter = await smtp_transport.start(
                options, self.ingest, self.accepts
            )
        except smtp_transport.SocketAccessError as exc:
            raise ConfigError(f"listener.{exc.key}: {exc} (in {config.path})") from None
        except OSError as exc:  # taken since the check before the start: one line, exit 78
            where = listener.socket or f"{listener.host}:{listener.port}"
            key = "socket" if listener.socket else "port"
            raise ConfigError(
                f"listener.{key}: cannot listen on {where}: {exc.strerror or exc}"
                f" (in {config.path})"
            ) from None

    def _start_pollers(self) -> None:
        if not self.ctx.config.imap:
            return
        # Imported only with accounts to poll: the IMAP client and imaplib are half a
        # MiB of serve's memory (bench/memory.py).
        from mailgate.transports import imap as imap_transport

        sink = _ImapSink(self)
        for account in self.ctx.config.imap:
            poller = imap_transport.Poller(account, sink, self.imap_stop)
            poller.start()
            self.pollers.append(poller)

    def _start_scheduler(self) -> None:
        scheduler = AsyncIOScheduler(event_loop=self.loop, timezone="UTC")
        pools = {"db": self.db, "outbox": self.sender, "worker": self.db, "jobs": self.jobs}
        pools["webhooks"] = self.hooks
        for job in PERIODIC:
            pool = pools[job.thread]

            async def tick(job: Periodic = job, pool: Any = pool) -> None:
                assert self.loop is not None
                try:
                    if job.thread == "worker":
                        await self.loop.run_in_executor(pool, self.worker.call, job.run)
                    else:
                        done = await self.loop.run_in_executor(pool, job.run, self.ctx)
                        if isinstance(done, outbox.Report):
                            self._count_delivery(done)
                except TemporaryFailure as exc:
                    event(log, f"{job.name}.deferred", logging.WARNING, error=str(exc))
                except Exception:
                    log.exception(f"scheduled job {job.name} failed")

            scheduler.add_job(
                tick,
                "interval",
                seconds=max(1, job.seconds(self.ctx.config)),
                id=job.name,
                max_instances=1,
                coalesce=True,
                next_run_time=_now(),
            )
        scheduler.add_job(
            self.upkeep.beat, "interval", seconds=HEARTBEAT_SECONDS, id="heartbeat", max_instances=1
        )
        scheduler.add_job(self._give_back_memory, "interval", seconds=HEARTBEAT_SECONDS, id="trim")
        scheduler.start()
        self.scheduler = scheduler

    async def _give_back_memory(self) -> None:
        """Freed heap pages back to the system (worker/heap.py), off the loop."""
        assert self.loop is not None
        await self.loop.run_in_executor(self.db, heap.trim)

    def _count_delivery(self, report: outbox.Report) -> None:
        for result, count in (
            ("sent", report.sent),
            ("deferred", report.retried),
            ("failed", report.failed),
        ):
            if count:
                self.metrics.notices.labels(result).inc(count)

    async def shutdown(self) -> None:
        event(log, "serve.stopping")
        assert self.loop is not None
        if self.server is not None:
            self.server.close()  # stop accepting
            if self.counter is not None:
                await self._finish_sessions(self.counter)
        self.imap_stop.set()
        if self.web is not None:
            await self.web.stop()
        if self.scheduler is not None:
            self.scheduler.pause()
        await self.loop.run_in_executor(None, self._join_threads)
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=False)
        event(log, "serve.stopped")

    async def _finish_sessions(self, counter: smtp_transport.Counter) -> None:
        """Let every mail in flight be stored AND answered, then close the sessions.

        A 250 that was decided but not yet written would make the sender try again
        (harmless: a duplicate) — but "finishes the messages in flight" means the
        sender hears the answer.
        """
        assert self.loop is not None
        deadline = self.loop.time() + SHUTDOWN_GRACE
        while self.loop.time() < deadline:
            if counter.in_flight == 0 and not counter.sessions:
                break  # no session open: no mail in flight, no answer left to write
            if counter.in_flight == 0:
                await asyncio.sleep(0.2)  # the answer is written a few loop turns later
                if counter.in_flight == 0 and counter.answered():
                    break
            await asyncio.sleep(0.05)
        for session in list(counter.sessions):
            with contextlib.suppress(Exception):
                session.transport.close()

    def _join_threads(self) -> None:
        for poller in self.pollers:
            poller.join(timeout=SHUTDOWN_GRACE)
        self.sender.shutdown(wait=True)
        self.hooks.shutdown(wait=True)
        self.jobs.shutdown(wait=True)
        self.db.shutdown(wait=True)
        self.upkeep.stop()  # a clean stop: check says "not running" at once
        self.metrics.stop()


class _ImapSink:
    def __init__(self, gateway: Gateway) -> None:
        self.gateway = gateway

    def ingest(self, raw: bytes, account: ImapAccount) -> Outcome:
        return self.gateway.imap_ingest(raw, account)

    def position(self, account: ImapAccount) -> tuple[int, int]:
        result: tuple[int, int] = self.gateway.in_db(ledger.position, account.name)
        return result

    def record(
        self, account: ImapAccount, uidvalidity: int, uid: int, counts: dict[str, int]
    ) -> None:
        self.gateway.in_db(ledger.record, account.name, uidvalidity, uid, counts)

    def note(self, account: ImapAccount, text: str) -> None:
        self.gateway.metrics.imap_errors.labels(account.name).inc()
        self.gateway.in_db(ledger.note, account.name, text)

    def claim(self, account: ImapAccount, uidvalidity: int, uids: list[int]) -> list[int]:
        taken: list[int] = self.gateway.in_db(imapclaims.claim, account.name, uidvalidity, uids)
        return taken

    def settle(
        self, account: ImapAccount, uidvalidity: int, claimed: list[int], done: list[int]
    ) -> None:
        self.gateway.in_db(imapclaims.settle, account.name, uidvalidity, claimed, done)


def _agents_may_log_in(config: Config) -> bool:
    return any(a.smtp_password_env or a.smtp_password_file for a in config.agents)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def serve(
    ctx: Context, *, smtp: bool = True, imap: bool = True, reload: Reload | None = None
) -> int:
    """Run the gateway until SIGTERM/SIGINT; SIGHUP calls ``reload`` for the new config."""
    return asyncio.run(Gateway(ctx, smtp=smtp, imap=imap, reload=reload).run())
