"""The blob store in PostgreSQL (``storage.blob_url = postgresql://…``): a table of
sha256 → bytea, so the database is the only state gateway machines share.

The SQL is the store's (``store/blobdb.py``); here is what makes it a ``BlobStore``:
hashing, streaming a big blob in parts of 1 MiB. A blob is held in memory once while
it is written (a bytea goes over the wire whole). Imports the store's blob table,
``blobs.base`` and errors.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from mailgate.blobs.base import READ_CHUNK, check_sha256, missing, spool
from mailgate.errors import TemporaryFailure
from mailgate.store.blobdb import BlobTable


class DatabaseStore:
    def __init__(self, url: str) -> None:
        self.table = BlobTable(url)

    @property
    def url(self) -> str:
        return self.table.shown

    def put(self, data: bytes, sha256: str | None = None) -> str:
        sha256 = sha256 or hashlib.sha256(data).hexdigest()
        check_sha256(sha256)
        self.table.insert(sha256, data)
        return sha256

    def write_chunks(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        sha256, size, buffer = spool(chunks)
        with buffer:
            self.table.insert(sha256, buffer.read())
        return sha256, size

    def get(self, sha256: str) -> bytes:
        check_sha256(sha256)
        data = self.table.content(sha256)
        if data is None:
            raise missing(sha256, self.url)
        return data

    def open(self, sha256: str) -> BinaryIO:
        return io.BufferedReader(_Reader(self.table, sha256, self.size(sha256)), READ_CHUNK)

    def size(self, sha256: str) -> int:
        check_sha256(sha256)
        size = self.table.size(sha256)
        if size is None:
            raise missing(sha256, self.url)
        return size

    def exists(self, sha256: str) -> bool:
        check_sha256(sha256)
        return self.table.size(sha256) is not None

    def delete(self, sha256: str) -> None:
        check_sha256(sha256)
        self.table.delete(sha256)

    def local_path(self, sha256: str) -> Path | None:
        return None

    def location(self, sha256: str) -> str:
        return f"{self.url} (table blob, sha256 {sha256})"


class _Reader(io.RawIOBase):
    """A blob read in parts, so a 25 MiB file is never held whole."""

    def __init__(self, table: BlobTable, sha256: str, size: int) -> None:
        self.table, self.sha256, self.total, self.offset = table, sha256, size, 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        wanted = min(len(buffer), self.total - self.offset)
        if wanted <= 0:
            return 0
        try:
            data = self.table.part(self.sha256, self.offset, wanted)
        except TemporaryFailure as exc:  # a reader's callers expect OSError
            raise OSError(str(exc)) from exc
        buffer[: len(data)] = data
        self.offset += len(data)
        return len(data)
