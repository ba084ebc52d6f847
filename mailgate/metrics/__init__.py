"""Metrics in Prometheus' text format: what the gateway did, and what waits, on ``/metrics``.

Counted where serve sees it happen (the worker is a process of its own, so intake
is counted by serve from each mail's outcome): mails received by source and result,
the ingest latency, notices sent and failed by the outbox, IMAP poll errors. Read
from the database at each scrape (``store/health.py``, a few small queries): the
outbox depth and its oldest waiting mail's age, the quarantine, the circuit
breaker's state and its trips (a counter in the database, since the breaker runs in
the worker and the jobs thread). ``[metrics] listen`` ("127.0.0.1:9464") serves them while serve
runs; a web front end may serve ``render()`` on its own port instead.

The front door: ``Metrics`` (one registry per serve). Imports prometheus_client,
config and the store's health reads.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mailgate.config import Config
from mailgate.errors import ConfigError
from mailgate.store import health
from mailgate.store.db import utcnow

log = logging.getLogger("mailgate.metrics")

__all__ = ["Metrics"]


class Metrics:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.registry = CollectorRegistry()
        self.received = Counter(
            "mailgate_mails_received",
            "Mails received, by source (smtp, lmtp, imap) and result (the ingest outcome)",
            ["source", "result"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "mailgate_ingest_seconds",
            "Time from a mail handed to the worker to its outcome",
            ["source"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.notices = Counter(
            "mailgate_notices",
            "Outbound mails delivered by the outbox, by result (sent, deferred, failed)",
            ["result"],
            registry=self.registry,
        )
        self.imap_errors = Counter(
            "mailgate_imap_poll_errors",
            "Problems an IMAP poller met (login, connection, fetch), by account",
            ["account"],
            registry=self.registry,
        )
        self.registry.register(_FromDatabase(self))
        self._server: Any = None
        self._thread: threading.Thread | None = None

    def render(self) -> bytes:
        """The text exposition format (for a web front end's own /metrics)."""
        return generate_latest(self.registry)

    def start(self) -> str | None:
        """Serve /metrics on ``[metrics] listen``; the address, or None when not set."""
        from prometheus_client import start_http_server

        listen = self.config.metrics.listen
        if not listen:
            return None
        host, _, port = listen.rpartition(":")
        try:
            self._server, self._thread = start_http_server(int(port), host, self.registry)
        except OSError as exc:  # taken since the check before the start: one line, exit 78
            raise ConfigError(
                f"metrics.listen: cannot listen on {listen}: {exc.strerror or exc}"
                f" (in {self.config.path})"
            ) from None
        return f"{host}:{self._server.server_port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None


class _FromDatabase(Collector):
    """The gauges read at each scrape: what waits now."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        from mailgate.notices.breaker import BREAKER_TRIPS, rates
        from mailgate.store import breaker as breaker_counts
        from mailgate.store import counters

        try:
            now = utcnow()
            backlog = health.backlog(now - dt.timedelta(hours=1))
            limits = rates(self.metrics.config.outbound.limits)[2]
            minute = breaker_counts.minute(now)
            tripped = any(
                breaker_counts.overall(minute - max(seconds // 60, 1)) >= count
                for count, seconds in limits
            )
            trips = counters.value(BREAKER_TRIPS)
        except Exception as exc:  # noqa: BLE001 - a scrape must never take serve down
            log.warning("metrics: reading the database failed: %s", exc)
            return
        outbox = GaugeMetricFamily(
            "mailgate_outbox_items", "Outbox mails by state (not yet sent)", labels=["state"]
        )
        for state in ("queued", "failed", "uncertain"):
            outbox.add_metric([state], backlog["outbox"][state])
        yield outbox
        hooks = GaugeMetricFamily(
            "mailgate_webhook_deliveries",
            "Webhook deliveries by state (not yet delivered)",
            labels=["state"],
        )
        for state in ("queued", "failed", "uncertain"):
            hooks.add_metric([state], backlog["webhooks"][state])
        yield hooks
        oldest = backlog["outbox"]["oldest_waiting_at"]
        age = (now - oldest).total_seconds() if oldest else 0.0
        yield GaugeMetricFamily(
            "mailgate_outbox_oldest_age_seconds",
            "Age of the oldest outbox mail waiting to be sent (0: none waits)",
            value=max(age, 0.0),
        )
        yield GaugeMetricFamily(
            "mailgate_quarantine_items",
            "Quarantined mails not yet retried or deleted",
            value=len(backlog["quarantined"]),
        )
        yield CounterMetricFamily(
            "mailgate_breaker_trips",
            "Recipients of automatic mail the circuit breaker held back (all processes)",
            value=trips,
        )
        yield GaugeMetricFamily(
            "mailgate_breaker_open",
            "1 while the circuit breaker's overall window is full (no automatic mail leaves)",
            value=1 if tripped else 0,
        )
