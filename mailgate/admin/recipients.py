"""Recipient health for admins: the addresses a permanent bounce marked undeliverable.

While marked, an address gets no automatic mail (``notices/breaker.py``) for
``outbound.limits.undeliverable_days``; ``clear`` lets it have mail again at once —
after the customer fixed their mailbox, or when a bounce was wrong.
"""

from __future__ import annotations

import re
from typing import Any

from mailgate import store
from mailgate.errors import UsageError
from mailgate.store import people
from mailgate.store.views import iso

_STATUS = re.compile(r"^\s*([245]\.\d{1,3}\.\d{1,3})\s*(.*)$", re.DOTALL)


def listing(*, undeliverable_only: bool) -> list[dict[str, Any]]:
    """Marked addresses: until when, the ticket, the DSN status and diagnostic of the bounce."""
    rows = []
    for row in people.marked_undeliverable(store.utcnow(), current_only=undeliverable_only):
        match = _STATUS.match(row["bounce"])
        rows.append(
            {
                "address": row["address"],
                "undeliverable_until": iso(row["until"]),
                "undeliverable": row["held_back"],
                "ticket": row["ticket"],
                "status": match.group(1) if match else "",
                "diagnostic": (match.group(2) if match else row["bounce"]).strip(),
            }
        )
    return rows


def clear(address: str) -> None:
    """Automatic mail may go to ``address`` again."""
    email = address.strip().lower()
    with store.write_transaction():
        if not people.clear_undeliverable(email):
            raise UsageError(f"{email} is not marked undeliverable")
