"""What every blob store offers (``BlobStore``), and what the backends share.

A blob is immutable content named by its sha256. A store that cannot be reached
raises ``TemporaryFailure`` (the sender retries, nothing is lost); a blob that is
not there raises ``BlobMissing``, a ``FileNotFoundError`` whose ``strerror`` says
so, as the file store always did. Imports the standard library and errors only.
"""

from __future__ import annotations

import errno
import hashlib
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO, Protocol

# Bytes a remote store's write_chunks keeps in memory before spilling to a temporary file.
SPOOL_IN_MEMORY = 8 << 20
READ_CHUNK = 1 << 20


class BlobStore(Protocol):
    @property
    def url(self) -> str:
        """Where the store is (``file:///…``, ``s3://bucket/prefix``; no password)."""

    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Store ``data`` (its sha256 may be given when known); returns its sha256."""

    def write_chunks(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Store a stream without holding all of it in memory; (sha256, size)."""

    def get(self, sha256: str) -> bytes: ...

    def open(self, sha256: str) -> BinaryIO:
        """A binary reader of the blob, for blobs too big to hold (close it)."""

    def size(self, sha256: str) -> int: ...

    def exists(self, sha256: str) -> bool: ...

    def delete(self, sha256: str) -> None: ...

    def local_path(self, sha256: str) -> Path | None:
        """The blob's file when the store is a local folder; None otherwise."""

    def location(self, sha256: str) -> str:
        """Where the blob is, for people (a path or a URL)."""


class BlobMissing(FileNotFoundError):
    """No blob with that sha256 in the store."""


def missing(sha256: str, where: object) -> BlobMissing:
    return BlobMissing(errno.ENOENT, f"no blob {sha256} in {where}")


def check_sha256(sha256: str) -> None:
    if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
        raise ValueError(f"not a sha256: {sha256!r}")


def spool(chunks: Iterable[bytes]) -> tuple[str, int, BinaryIO]:
    """Hash and buffer a stream (spilling to a temporary file past 8 MiB), for a store
    that must know the name (the sha256) before it writes; the buffer is at offset 0."""
    digest = hashlib.sha256()
    size = 0
    buffer = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115
    try:
        for chunk in chunks:
            digest.update(chunk)
            size += len(chunk)
            buffer.write(chunk)
        buffer.seek(0)
    except BaseException:
        buffer.close()
        raise
    return digest.hexdigest(), size, buffer  # type: ignore[return-value]


def read_chunks(source: BinaryIO, chunk: int = READ_CHUNK) -> Iterable[bytes]:
    with source:
        while data := source.read(chunk):
            yield data
