"""While mail is arriving, serve's desk keeps to a share of one CPU (``[web] intake_share``).

Why: under ``SCHED_IDLE`` the desk runs only on CPU the listener leaves idle, yet 8
browsers reading back to back still cost intake about a sixth of its rate on a
2-core machine (issue 15, ``bench/web_intake.py``: 0.79 and 0.86 of intake alone,
the desk at ~0.6 of a core). Intake is a relay of short wake-ups (client → listener
→ ingest worker → listener); the desk fills the gaps between them, and every time it
does, the next wake-up finds a core whose caches hold the desk's pages. How much
that costs grows with how much of the gaps the desk fills, so while mail is arriving
the desk paces itself: requests start one after another, spaced by what a request
has cost the desk lately (its CPU ÷ the requests it started) ÷ ``share`` — a page of
~11 ms at a fifth of a core starts every 55 ms, some 18 pages a second. Requests
that have started run side by side: a slow upload, a slow download or a slow page
holds nobody up. More than ``MOST_WAITING`` waiting for their start get 503 with
``Retry-After`` (clients that gave up do not pile up).

What users see: nothing while people click (the cap is above what a team asks for);
under a flood of mail, pages come later rather than intake slowing. A second after
the last mail the pace is off. ``mailgate web`` (no listener beside it) is never paced.

The signal: serve stamps ``MailClock`` (a double in memory shared with the desk's
processes) with ``time.monotonic()`` each time it hands a mail to its ingest worker;
the clock is system-wide on Linux, so the desk compares it with its own.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from typing import Any

# The pace is off this long after the last mail handed to the worker.
QUIET_SECONDS = 1.0
# What a request is taken to cost the desk (CPU seconds) until it has been measured,
# and the bounds of the measure: the gap between two starts is at most
# MOST_COST ÷ share, however heavy the last pages were.
FIRST_COST, LEAST_COST, MOST_COST = 0.01, 0.001, 0.1
# Requests whose start is measured together (the desk's CPU over them ÷ their number).
WINDOW = 4
# Requests waiting for their start beyond this are answered 503 at once.
MOST_WAITING = 64


class MailClock:
    """When serve last handed a mail to its worker (``time.monotonic()``), shared."""

    def __init__(self) -> None:
        self.value: Any = multiprocessing.get_context("spawn").RawValue("d", 0.0)

    def mark(self) -> None:
        self.value.value = time.monotonic()

    def busy(self, now: float) -> bool:
        return bool(now - self.value.value < QUIET_SECONDS)


class Pace:
    """ASGI middleware: while mail is arriving, HTTP requests start one after another,
    each ``cost ÷ share`` seconds after the one before (see the module's docstring)."""

    most_waiting = MOST_WAITING

    def __init__(self, app: Any, clock: MailClock, share: float) -> None:
        self.app, self.clock, self.share = app, clock, share
        self.gate = asyncio.Lock()
        self.next_start = 0.0  # monotonic time the next request may start
        self.cost = FIRST_COST
        self.waiting = 0
        self.started = 0  # requests started since ``self.cpu`` was read
        self.cpu = time.process_time()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and self.share < 1.0 and self._busy():
            if self.waiting >= self.most_waiting:
                await _busy_answer(send)
                return
            self.waiting += 1
            try:
                async with self.gate:
                    await self._turn()
            finally:
                self.waiting -= 1
        await self.app(scope, receive, send)

    def _busy(self) -> bool:
        """Whether mail is arriving; if not, the pace starts afresh next time."""
        if self.clock.busy(time.monotonic()):
            return True
        self.next_start, self.started, self.cpu = 0.0, 0, time.process_time()
        return False

    async def _turn(self) -> None:
        wait = self.next_start - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self.started += 1
        if self.started >= WINDOW:
            cpu = time.process_time()
            cost = (cpu - self.cpu) / self.started
            self.cost = min(max(cost, LEAST_COST), MOST_COST)
            self.started, self.cpu = 0, cpu
        self.next_start = time.monotonic() + self.cost / self.share


async def _busy_answer(send: Any) -> None:
    body = b"The desk is busy while mail is arriving; try again in a moment.\n"
    headers = [
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode()),
        (b"retry-after", b"1"),
    ]
    await send({"type": "http.response.start", "status": 503, "headers": headers})
    await send({"type": "http.response.body", "body": body})
