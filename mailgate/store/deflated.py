"""Outbox contents stored deflated: a notice's row takes a quarter of a page, not a page.

A queued notice's content (its snapshot, or the mail composed at delivery) is
2.5–3 KB of JSON or MIME, a 4 KiB SQLite page to itself: every notice of a mail
was a new leaf page of ``outbox_item`` (and often its parent) for the commit to
write. Deflated (level 1, a 4 KiB window: ~15 µs) it is a third of that.

A deflated content is ``MARK`` and the raw deflate stream; anything else is stored
as it was (short contents, blob references, rows written before). No mail and no
other mark (``outbox.BLOB_MARK``, the notices' snapshot mark) starts with it, so
``inflate`` tells them apart by the first bytes. ``store/outbox.py`` and the model's
field (``models.OutboxItem.content``) are the only ones who write and read it.
Imports the standard library only.
"""

from __future__ import annotations

import zlib

MARK = b"\x00mailgate-deflate:"
# Below this, a page holds several rows anyway: kept as it is.
SMALLEST = 512


def deflate(content: bytes) -> bytes:
    """``content`` as stored: deflated when that makes it smaller."""
    if len(content) < SMALLEST or content.startswith(MARK):
        return content
    # A 4 KiB window and a small hash table: most of zlib's time on a few KB goes to
    # setting up the default 32 KiB window, for little gain on contents this size.
    squeezer = zlib.compressobj(1, zlib.DEFLATED, -12, 4)
    packed = MARK + squeezer.compress(content) + squeezer.flush()
    return packed if len(packed) < len(content) else content


def inflate(stored: bytes) -> bytes:
    """The content as it was queued."""
    if stored.startswith(MARK):
        return zlib.decompress(memoryview(stored)[len(MARK) :], -15)
    return stored
