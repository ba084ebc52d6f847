"""systemd's notify protocol for ``mailgate serve``: readiness, watchdog, stopping.

With ``Type=notify`` systemd starts the units that need mailgate only after serve
said ``READY=1`` (the listener accepts, the worker runs, the jobs are scheduled).
With ``WatchdogSec=`` it restarts a serve whose event loop stopped turning: the
loop itself sends ``WATCHDOG=1`` at half the interval, so a loop that hangs
misses it. ``STOPPING=1`` tells systemd the shutdown is ours, not a crash.

The protocol is one datagram of ``KEY=value`` lines to the unix socket named by
``$NOTIFY_SOCKET`` (``@name``: the abstract namespace); no library is needed.
Outside systemd ``$NOTIFY_SOCKET`` is unset and every call does nothing.

Imports only the standard library.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket

log = logging.getLogger("mailgate.systemd")


def notify(*states: str) -> bool:
    """Send ``states`` (e.g. ``"READY=1"``) to systemd; False when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            sock.connect(address)
            sock.sendall("\n".join(states).encode())
    except OSError as exc:
        # systemd went away or the socket is not ours: serving mail matters more.
        log.warning("systemd notify failed: %s", exc.strerror or exc)
        return False
    return True


def watchdog_interval() -> float | None:
    """Seconds between two ``WATCHDOG=1``: half of ``$WATCHDOG_USEC``, None if not asked.

    ``$WATCHDOG_PID`` names the process the watchdog is meant for; a child that
    inherited the environment is not it.
    """
    pid = os.environ.get("WATCHDOG_PID", "")
    if pid and pid != str(os.getpid()):
        return None
    try:
        usec = int(os.environ.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    return usec / 2e6 if usec > 0 else None


def start_watchdog() -> asyncio.Task[None] | None:
    """In the running loop: send ``WATCHDOG=1`` every half interval until cancelled."""
    interval = watchdog_interval()
    if interval is None or not os.environ.get("NOTIFY_SOCKET"):
        return None
    return asyncio.get_running_loop().create_task(_keep_alive(interval), name="systemd-watchdog")


async def _keep_alive(interval: float) -> None:
    while True:
        notify("WATCHDOG=1")
        await asyncio.sleep(interval)
