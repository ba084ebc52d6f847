"""The outbox for admins: what waits to leave, sending what is due now, and sending again.

Mail and webhook deliveries (notice ``webhook``) alike. ``retry`` accepts a failed
or uncertain item only: a sent one would arrive twice.
"""

from __future__ import annotations

from typing import Any

from mailgate import outbox, webhooks
from mailgate.config import Config
from mailgate.store import views
from mailgate.store.rows import OutboxRow

LIMIT = 500  # a listing shows the newest items; ``count`` says how many there are in all


def listing(status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The newest ``limit`` items (default ``LIMIT``; with ``status``), newest first."""
    return views.outbox(status, limit or LIMIT)


def count(status: str | None = None) -> int:
    return views.outbox_count(status)


def flush(config: Config) -> outbox.Report:
    """Send everything that is due now: the mail, then the webhook deliveries (one count)."""
    report = outbox.deliver(config)
    hooks = webhooks.deliver(config)
    report.sent += hooks.sent
    report.retried += hooks.retried
    report.failed += hooks.failed
    report.errors.extend(hooks.errors)
    return report


def retry(item_id: int) -> OutboxRow:
    """Queue a failed or uncertain mail again, due now."""
    return outbox.retry(item_id)
