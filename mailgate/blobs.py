"""The content-addressed file store: raw mails and attachments, by sha256.

A blob is written once under ``<dir>/ab/cd/<sha256>`` through a temporary file
and a rename, so a reader never sees half a file and identical content is
stored once. Writing happens before the database transaction that references
it: a crash in between leaves an unreferenced file, never a reference to a
missing one. A full disk or a read-only directory becomes ``TemporaryFailure``
(the sender retries), never a lost mail.

Imports the standard library and ``mailgate.errors`` only.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from mailgate.errors import TemporaryFailure


class BlobStore:
    def __init__(self, root: str | Path, *, fsync: bool = False) -> None:
        self.root = Path(root)
        self.fsync = fsync
        self._made: set[Path] = set()

    def path(self, sha256: str) -> Path:
        if len(sha256) != 64 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def put(self, data: bytes, sha256: str | None = None) -> str:
        """Store ``data``; returns its sha256."""
        sha256 = sha256 or hashlib.sha256(data).hexdigest()
        target = self.path(sha256)
        if not target.exists():
            self._write(target, (data,))
        return sha256

    def write_chunks(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        """Store a stream without holding it in memory; returns (sha256, size)."""
        digest = hashlib.sha256()
        size = 0
        self._ensure_dir(self.root)
        try:
            fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".incoming-")
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    digest.update(chunk)
                    size += len(chunk)
                    handle.write(chunk)
                self._sync(handle.fileno())
            sha256 = digest.hexdigest()
            target = self.path(sha256)
            self._ensure_dir(target.parent)
            os.replace(tmp, target)
        except OSError as exc:
            _remove_quietly(locals().get("tmp"))
            raise TemporaryFailure(f"blob store {self.root}: {exc.strerror or exc}") from exc
        return sha256, size

    def get(self, sha256: str) -> bytes:
        return self.path(sha256).read_bytes()

    def exists(self, sha256: str) -> bool:
        return self.path(sha256).exists()

    def _write(self, target: Path, chunks: Iterable[bytes]) -> None:
        tmp: str | None = None
        try:
            self._ensure_dir(target.parent)
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".incoming-")
            with os.fdopen(fd, "wb") as handle:
                for chunk in chunks:
                    handle.write(chunk)
                self._sync(handle.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            _remove_quietly(tmp)
            raise TemporaryFailure(f"blob store {self.root}: {exc.strerror or exc}") from exc

    def _sync(self, fd: int) -> None:
        if self.fsync:
            os.fsync(fd)

    def _ensure_dir(self, directory: Path) -> None:
        if directory not in self._made:
            directory.mkdir(parents=True, exist_ok=True)
            self._made.add(directory)


def _remove_quietly(path: object) -> None:
    if isinstance(path, str):
        with contextlib.suppress(OSError):
            os.unlink(path)
