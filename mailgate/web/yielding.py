"""While mail is arriving, serve's desk keeps to a share of one CPU (``[web] intake_share``).

Why: under ``SCHED_IDLE`` the desk runs only on CPU the listener leaves idle, yet 8
browsers reading back to back still cost intake about a sixth of its rate on a
2-core machine (issue 15, ``bench/web_intake.py``: 0.79 and 0.86 of intake alone,
the desk at ~0.6 of a core). Intake is a relay of short wake-ups (client → listener
→ ingest worker → listener); the desk fills the gaps between them, and every time it
does, the next wake-up finds a core whose caches hold the desk's pages. How much
that costs grows with how much of the gaps the desk fills, so while mail is arriving
the desk paces itself: it lets a request in only when its CPU over the time it has
been paced is within ``share`` of one core; the rest wait their turn, in order.

What users see: nothing at ordinary rates (a page costs the desk ~11 ms of CPU, so a
fifth of a core is about 18 pages a second — people clicking); under a flood of mail,
pages come later rather than intake slowing. A second after the last mail the pace
is off. ``mailgate web`` (no listener beside it) is never paced.

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
# A debt of CPU older than this is not carried over (a page that took long
# before the pace began does not make the next wait long).
MOST_DEBT_SECONDS = 0.5


class MailClock:
    """When serve last handed a mail to its worker (``time.monotonic()``), shared."""

    def __init__(self) -> None:
        self.value: Any = multiprocessing.get_context("spawn").RawValue("d", 0.0)

    def mark(self) -> None:
        self.value.value = time.monotonic()

    def busy(self, now: float) -> bool:
        return bool(now - self.value.value < QUIET_SECONDS)


class Pace:
    """ASGI middleware: while mail is arriving, one HTTP request at a time is worked on,
    and each waits until the desk's CPU since the pace began is within ``share`` of one
    core. A request gives up its turn when it starts its answer (a download streams on
    without holding the others)."""

    def __init__(self, app: Any, clock: MailClock, share: float) -> None:
        self.app, self.clock, self.share = app, clock, share
        self.turn = asyncio.Lock()
        self.debt = 0.0  # CPU seconds used beyond the share
        self.cpu = time.process_time()
        self.at = time.monotonic()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or self.share >= 1.0 or not self._busy():
            await self.app(scope, receive, send)
            return
        await self.turn.acquire()
        held = True

        def release() -> None:
            nonlocal held
            if held:
                held = False
                self.turn.release()

        async def answering(message: Any) -> None:
            if message["type"] == "http.response.start":
                release()
            await send(message)

        try:
            await self._wait()
            await self.app(scope, receive, answering)
        finally:
            release()

    def _busy(self) -> bool:
        """Whether mail is arriving; if not, the count starts afresh."""
        now = time.monotonic()
        if self.clock.busy(now):
            return True
        self.debt, self.cpu, self.at = 0.0, time.process_time(), now
        return False

    async def _wait(self) -> None:
        while True:
            now, cpu = time.monotonic(), time.process_time()
            used, elapsed = cpu - self.cpu, now - self.at
            self.cpu, self.at = cpu, now
            self.debt = min(max(0.0, self.debt + used - self.share * elapsed), MOST_DEBT_SECONDS)
            if self.debt <= 0.0 or not self.clock.busy(now):
                return
            await asyncio.sleep(self.debt / self.share)
