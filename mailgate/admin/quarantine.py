"""Quarantined mail: what could not be processed, why, its raw bytes, and another try.

Nothing is lost when processing fails: the receipt and the raw mail stay, and an
admin looks at them here and retries after a fix.
"""

from __future__ import annotations

from typing import Any

from mailgate import intake, store
from mailgate.context import Context
from mailgate.envelope import Outcome
from mailgate.errors import UsageError
from mailgate.store import receipts, views


def listing() -> list[dict[str, Any]]:
    return views.receipts("quarantined")


def show(ctx: Context, receipt_id: int) -> tuple[dict[str, Any], str]:
    """The receipt as JSON-able data, and where its raw mail lies (a path or a URL)."""
    receipt = views.receipt(receipt_id)
    return views.receipt_json(receipt), ctx.blobs.location(receipt.sha256)


def raw(ctx: Context, receipt_id: int) -> bytes:
    """The mail exactly as it was received."""
    receipt = views.receipt(receipt_id)
    try:
        return ctx.blobs.get(receipt.sha256)
    except OSError as exc:
        raise UsageError(
            f"the raw mail {receipt.sha256} is missing from the blob store: {exc.strerror}"
        ) from None


def retry(ctx: Context, receipt_id: int) -> Outcome:
    """Process a quarantined mail again, from its stored bytes."""
    return intake.retry(ctx, receipt_id)


def delete(receipt_id: int) -> None:
    """Stop waiting for a quarantined mail (``mailgate status`` no longer counts it).

    Nothing is erased: the receipt keeps deduplicating re-deliveries and the raw mail
    stays in the blob store.
    """
    with store.write_transaction():
        if not receipts.dismiss(receipt_id):
            raise UsageError(f"no quarantined mail {receipt_id}")
