"""The outbox for admins: what waits to leave, sending what is due now, and sending again.

``retry`` accepts a failed or uncertain mail only: a sent one would arrive twice.
"""

from __future__ import annotations

from typing import Any

from mailgate import outbox
from mailgate.config import Config
from mailgate.store import views
from mailgate.store.rows import OutboxRow


def listing(status: str | None = None) -> list[dict[str, Any]]:
    return views.outbox(status)


def flush(config: Config) -> outbox.Report:
    """Send everything that is due now."""
    return outbox.deliver(config)


def retry(item_id: int) -> OutboxRow:
    """Queue a failed or uncertain mail again, due now."""
    return outbox.retry(item_id)
