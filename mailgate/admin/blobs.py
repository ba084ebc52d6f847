"""The blob store for admins: one blob's bytes, and moving every blob to another store.

``copy_to`` copies what the database references (raw mails, kept files, notices composed
into the blob store) from the configured store to the one a URL names; run it again to
go on after a stop. Then point ``storage.blob_url`` at the new store.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import BinaryIO

from mailgate.blobs import CopyReport, copy_all, store_for_url

__all__ = ["CopyReport", "copy_to", "open_blob"]
from mailgate.blobs.base import check_sha256
from mailgate.context import Context
from mailgate.errors import UsageError
from mailgate.store import blobdb


def open_blob(ctx: Context, sha256: str) -> BinaryIO:
    """A reader of the blob ``sha256``; one line if it is not a sha256 or not there."""
    sha256 = sha256.strip().lower()
    try:
        check_sha256(sha256)
    except ValueError:
        raise UsageError(f"not a sha256 (64 hex digits): {sha256!r}") from None
    try:
        return ctx.blobs.open(sha256)
    except FileNotFoundError:
        raise UsageError(f"no blob {sha256} in {ctx.blobs.url}") from None


def copy_to(
    ctx: Context,
    url: str,
    *,
    s3_endpoint: str | None = None,
    progress: Callable[[CopyReport], None] | None = None,
) -> CopyReport:
    endpoint = ctx.config.storage.s3_endpoint if s3_endpoint is None else s3_endpoint
    try:
        target = store_for_url(
            url, s3_endpoint=endpoint if url.startswith("s3:") else "", key="--to"
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if target.url == ctx.blobs.url:
        raise UsageError(f"--to {url}: that is the configured blob store itself")
    return copy_all(ctx.blobs, target, blobdb.referenced(), progress)
