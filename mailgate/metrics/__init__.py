"""Metrics in Prometheus' text format: what the gateway did, and what waits, on ``/metrics``.

Counted where serve sees it happen (the worker is a process of its own, so intake
is counted by serve from each mail's outcome): mails received by source and result,
the ingest latency, notices sent and failed by the outbox, IMAP poll errors. Read
from the database at each scrape (``store/health.py``, a few small queries): the
outbox depth and its oldest waiting mail's age, the quarantine, the circuit
breaker's state and its trips (a counter in the database, since the breaker runs in
the worker and the jobs thread). ``[metrics] listen`` ("127.0.0.1:9464") serves them while serve
runs; a web front end may serve ``render()`` on its own port instead.

The front door: ``Metrics`` (one registry per serve). Imports prometheus_client (and
the store's health reads, ``gauges.py``) only when it counts: a serve with neither
``[metrics] listen`` nor a desk shows its counts to nobody, and prometheus_client with
the HTTP server it brings is most of a MiB of serve's memory (bench/memory.py).
"""

from __future__ import annotations

import threading
from typing import Any

from mailgate.config import Config
from mailgate.errors import ConfigError

__all__ = ["Metrics"]


class Metrics:
    """serve's counters; with ``counting=False`` they count nothing and import nothing."""

    def __init__(self, config: Config, *, counting: bool = True) -> None:
        self.config = config
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.registry: Any = None
        quiet = _Uncounted()
        self.received: Any = quiet
        self.latency: Any = quiet
        self.notices: Any = quiet
        self.imap_errors: Any = quiet
        if not counting:
            return
        from prometheus_client import CollectorRegistry, Counter, Histogram

        from mailgate.metrics.gauges import FromDatabase

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
        self.registry.register(FromDatabase(self))

    def render(self) -> bytes:
        """The text exposition format (for a web front end's own /metrics)."""
        if self.registry is None:
            return b""
        from prometheus_client import generate_latest

        return generate_latest(self.registry)

    def start(self) -> str | None:
        """Serve /metrics on ``[metrics] listen``; the address, or None when not set."""
        listen = self.config.metrics.listen
        if not listen or self.registry is None:
            return None
        from prometheus_client import start_http_server

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


class _Uncounted:
    """A counter, histogram or label set that keeps nothing."""

    def labels(self, *values: str) -> _Uncounted:
        return self

    def inc(self, amount: float = 1) -> None:
        pass

    def observe(self, value: float) -> None:
        pass
