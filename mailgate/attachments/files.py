"""Files an agent attaches from the CLI (``tickets reply --attach FILE``): streamed into
the blob store before the transaction that references them, and checked against
``outbound.max_message_size`` before anything is queued.

Imports the context (blob store), errors, config and ``mail``; never the edge.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from mailgate.context import Context
from mailgate.errors import UsageError
from mailgate.mail.walk import safe_filename

_CHUNK = 1 << 20
# base64 turns 57 bytes into a 78-byte line (76 characters and CRLF).
_BASE64_GROWTH = 78 / 57


@dataclass(frozen=True)
class StoredFile:
    filename: str
    original_filename: str
    content_type: str
    sha256: str
    size: int

    def row(self) -> tuple[object, ...]:
        """The values ``store.messages.add_attachments`` takes."""
        return (
            self.sha256, self.size, self.content_type[:200], self.filename[:255], "", False,
            self.original_filename, True,
        )  # fmt: skip


def encoded_size(size: int) -> int:
    return int(size * _BASE64_GROWTH) + 400


def check_outbound_size(
    ctx: Context,
    text: str,
    sizes: Sequence[tuple[str, int]],
    outcome: str = "nothing was queued",
) -> None:
    """Raise one line naming the largest file and the limit when the mail would be too big."""
    limit = ctx.config.outbound.max_message_size
    total = len(text.encode("utf-8")) * 2 + 8192 + sum(encoded_size(s) for _, s in sizes)
    if total > limit and sizes:
        name, size = max(sizes, key=lambda item: item[1])
        from mailgate.attachments.relay import size_text

        raise UsageError(
            f"the reply with {name} ({size_text(size)}) would be {size_text(total)} encoded,"
            f" over outbound.max_message_size ({size_text(limit)}); {outcome}"
        )


def store_files(ctx: Context, paths: Sequence[str], text: str) -> list[StoredFile]:
    """Each file into the blob store (streamed), after the size check; one line if one
    cannot be read."""
    sizes = []
    for name in paths:
        path = Path(name)
        try:
            if not path.is_file():
                raise UsageError(f"--attach {name}: not a file")
            sizes.append((path.name, path.stat().st_size))
        except OSError as exc:
            raise UsageError(f"--attach {name}: {exc.strerror}") from None
    check_outbound_size(ctx, text, sizes)
    stored = []
    for name in paths:
        path = Path(name)
        try:
            sha256, size = ctx.blobs.write_chunks(_chunks(path))
        except OSError as exc:
            raise UsageError(f"--attach {name}: {exc.strerror}") from None
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        clean = safe_filename(path.name) or "attachment.bin"
        stored.append(StoredFile(clean, path.name, ctype, sha256, size))
    return stored


def _chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as source:
        while chunk := source.read(_CHUNK):
            yield chunk
