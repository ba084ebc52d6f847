"""One mail handed to an ingest worker, and its outcome to come.

``ingest`` in a worker under the per-mail deadline; past it, the mail quarantined
"took too long" by a fresh worker (``spool.took_too_long``). Nothing here waits: each
step runs where the worker's answer arrives (the pool's reader thread), and the
caller gets a future — the event loop awaits it, an IMAP thread blocks on it.
Imports the spool functions the worker runs, the metrics, the envelope and errors.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable

from mailgate import spool
from mailgate.envelope import Envelope, Outcome
from mailgate.errors import TemporaryFailure
from mailgate.logs import event
from mailgate.metrics import Metrics
from mailgate.worker.pool import Pool
from mailgate.worker.process import Overdue

log = logging.getLogger("mailgate.serve")


def ingest(
    pool: Pool,
    metrics: Metrics,
    seconds: float,
    raw: bytes,
    path: str,
    source: str,
    mailbox: str | None,
    envelope: Envelope | None,
) -> concurrent.futures.Future[Outcome]:
    """The outcome of ``raw`` (or of the mail in the file ``path``), to come."""
    started = time.monotonic()
    result: concurrent.futures.Future[Outcome] = concurrent.futures.Future()
    if path:
        first = pool.submit(spool.ingest_file, path, source, mailbox, envelope, deadline=seconds)
    else:
        first = pool.submit(spool.ingest, raw, source, mailbox, envelope, deadline=seconds)

    def ingested(done: concurrent.futures.Future[Outcome]) -> None:
        if done.cancelled():
            result.cancel()
            return
        error = done.exception()
        if error is None:
            outcome = done.result()
            metrics.latency.labels(source).observe(time.monotonic() - started)
            metrics.received.labels(source, outcome.action).inc()
            result.set_result(outcome)
        elif isinstance(error, Overdue):
            event(log, "worker.overdue", logging.WARNING, source=source, detail=str(error))
            try:
                again = pool.submit(
                    spool.took_too_long, raw, source, seconds, path, deadline=seconds
                )
            except TemporaryFailure as exc:  # serve is stopping
                result.set_exception(exc)
                return
            again.add_done_callback(quarantined)
        else:
            if isinstance(error, TemporaryFailure):
                metrics.received.labels(source, "deferred").inc()
            result.set_exception(error)

    def quarantined(done: concurrent.futures.Future[Outcome]) -> None:
        if done.cancelled():
            result.cancel()
            return
        error = done.exception()
        if isinstance(error, Overdue):
            error = TemporaryFailure(f"could not quarantine a slow mail: {error}")
        if error is not None:
            result.set_exception(error)
            return
        stopped = done.result()
        metrics.received.labels(source, stopped.action).inc()
        result.set_result(stopped)

    def settled(step: Callable[[concurrent.futures.Future[Outcome]], None]) -> Callable[..., None]:
        # Whatever goes wrong in a step, the waiting sender hears of it (451), never waits.
        def run(done: concurrent.futures.Future[Outcome]) -> None:
            try:
                step(done)
            except Exception as exc:  # noqa: BLE001
                if not result.done():
                    result.set_exception(exc)

        return run

    ingested, quarantined = settled(ingested), settled(quarantined)
    first.add_done_callback(ingested)
    return result
