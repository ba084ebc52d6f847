"""The raw mail on disk between ``serve`` and its ingest worker, and what the worker runs.

A big mail never crosses the worker's pipe: pickling costs a copy of it in serve and two
in the worker (bench/attachments.py). The listener writes one straight into a file of
the blob directory during DATA (``envelope.spool``); a big mail from IMAP is written
there by serve. The worker reads the file; whoever made it removes it.

The functions here run in the worker (module level: it imports them by name). Imports
intake (inside the functions: serve hands them over by name and never runs them, so
it need not load the intake), the context, the envelope and errors; never the edge.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from mailgate.context import Context
from mailgate.envelope import Envelope, Outcome
from mailgate.errors import TemporaryFailure

# A mail larger than this reaches the worker as a file, not through the pipe.
SPOOL_ABOVE = 1024 * 1024


def directory(ctx: Context) -> Path:
    """Where spool files live: the blob directory (the same disk the mail is stored on;
    with a blob store elsewhere, ``storage.blob_dir`` is only this spool)."""
    return Path(ctx.config.storage.blob_dir).absolute()


def ingest(
    ctx: Context, raw: bytes, source: str, mailbox: str | None, envelope: Envelope | None
) -> Outcome:
    from mailgate import intake

    return intake.ingest(ctx, raw, source=source, mailbox=mailbox, envelope=envelope)


def ingest_file(
    ctx: Context, path: str, source: str, mailbox: str | None, envelope: Envelope | None
) -> Outcome:
    """``ingest`` of the mail in ``path`` (the file stays; its maker removes it)."""
    from mailgate import intake

    raw = Path(path).read_bytes()
    return intake.ingest(ctx, raw, source=source, mailbox=mailbox, envelope=envelope)


def recover(ctx: Context) -> None:
    """The recovery job (``app.PERIODIC``), run in a worker."""
    from mailgate import intake

    intake.recover(ctx)  # logs mail.recovered with ticket and receipt for each mail


def write(ctx: Context, raw: bytes) -> Path:
    path = directory(ctx) / f".spool-{os.getpid()}-{uuid.uuid4().hex}"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(raw)
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise TemporaryFailure(f"cannot spool the mail to {path.parent}: {exc.strerror}") from exc
    return path


def took_too_long(ctx: Context, raw: bytes, source: str, seconds: float, path: str = "") -> Outcome:
    """Run by a fresh worker after a mail overran its deadline: quarantine its receipt."""
    from mailgate import intake

    if path:
        raw = Path(path).read_bytes()
    reason = f"took too long: stopped after {seconds:g} s (gateway.max_processing_seconds)"
    outcome = intake.stop(raw, reason, source)  # logs mail.ingested with ticket and receipt
    if outcome is None:
        raise TemporaryFailure("took too long before the mail was stored")
    return outcome
