"""The content-addressed file store: raw mails and attachments, by sha256, in a folder.

A blob is written once under ``<dir>/ab/<sha256>`` through a temporary file
and a rename, so a reader never sees half a file and identical content is
stored once. Writing happens before the database transaction that references
it: a crash in between leaves an unreferenced file, never a reference to a
missing one. A full disk or a read-only directory becomes ``TemporaryFailure``
(the sender retries), never a lost mail.

Imports the standard library, ``mailgate.errors`` and ``blobs.base`` only.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from mailgate.blobs.base import check_sha256, missing
from mailgate.errors import TemporaryFailure


class FileStore:
    """The blob store in a local folder (``storage.blob_dir``, ``file:///path``)."""

    def __init__(self, root: str | Path, *, fsync: bool = False) -> None:
        self.root = Path(root)
        self._root = str(root)
        self.fsync = fsync
        self._made: set[str] = set()
        self._serial = itertools.count()

    @property
    def url(self) -> str:
        return self.root.absolute().as_uri()

    def path(self, sha256: str) -> Path:
        return Path(self._path(sha256))

    def local_path(self, sha256: str) -> Path | None:
        return self.path(sha256)

    def location(self, sha256: str) -> str:
        return self._path(sha256)

    def _path(self, sha256: str) -> str:
        check_sha256(sha256)
        # One level of 256 directories: few mkdirs, and ~4,000 files per directory at
        # a million mails, which ext4 and XFS index well.
        return os.path.join(self._root, sha256[:2], sha256)

    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Store ``data``; returns its sha256."""
        sha256 = sha256 or hashlib.sha256(data).hexdigest()
        target = self._path(sha256)
        if not os.path.exists(target):
            self._write(target, (data,))
        return sha256

    def write_chunks(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Store a stream without holding it in memory; returns (sha256, size)."""
        digest = hashlib.sha256()
        size = 0
        tmp = self._temporary(self._root)
        try:
            self._ensure_dir(self._root)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
            try:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    _write_all(fd, chunk)
                self._sync(fd)
            finally:
                os.close(fd)
            target = self._path(digest.hexdigest())
            self._ensure_dir(os.path.dirname(target))
            os.replace(tmp, target)
        except OSError as exc:
            _remove_quietly(tmp)
            raise TemporaryFailure(f"blob store {self.root}: {exc.strerror or exc}") from exc
        return digest.hexdigest(), size

    def get(self, sha256: str) -> bytes:
        try:
            return self.path(sha256).read_bytes()
        except FileNotFoundError:
            raise missing(sha256, self.root) from None

    def open(self, sha256: str) -> BinaryIO:
        try:
            return self.path(sha256).open("rb")
        except FileNotFoundError:
            raise missing(sha256, self.root) from None

    def size(self, sha256: str) -> int:
        try:
            return os.stat(self._path(sha256)).st_size
        except FileNotFoundError:
            raise missing(sha256, self.root) from None

    def exists(self, sha256: str) -> bool:
        return os.path.exists(self._path(sha256))

    def delete(self, sha256: str) -> None:
        self.path(sha256).unlink(missing_ok=True)

    def _temporary(self, directory: str) -> str:
        return os.path.join(directory, f".incoming-{os.getpid()}-{next(self._serial)}")

    def _write(self, target: str, chunks: Iterable[bytes]) -> None:
        directory = os.path.dirname(target)
        tmp = self._temporary(directory)
        try:
            self._ensure_dir(directory)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o640)
            try:
                for chunk in chunks:
                    _write_all(fd, chunk)
                self._sync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, target)
        except OSError as exc:
            _remove_quietly(tmp)
            raise TemporaryFailure(f"blob store {self.root}: {exc.strerror or exc}") from exc

    def _sync(self, fd: int) -> None:
        if self.fsync:
            os.fsync(fd)

    def _ensure_dir(self, directory: str) -> None:
        if directory not in self._made:
            os.makedirs(directory, exist_ok=True)
            self._made.add(directory)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
