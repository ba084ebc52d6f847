"""The gauges of ``/metrics`` read from the database at each scrape: what waits now.

Imported by ``Metrics`` only when it counts (it subclasses prometheus_client's
``Collector``).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from mailgate.store import health
from mailgate.store.db import utcnow

log = logging.getLogger("mailgate.metrics")


class FromDatabase(Collector):
    """The gauges read at each scrape: what waits now."""

    def __init__(self, metrics: Any) -> None:
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
