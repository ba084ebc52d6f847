"""The blob store: raw mails, attachments and notices carrying files, by sha256.

One front door: ``open_store(config)`` gives the ``BlobStore`` that ``storage.blob_url``
names — the local folder (``files.FileStore``, the default: ``storage.blob_dir``), a
table in PostgreSQL (``database.DatabaseStore``) or an S3-compatible bucket
(``s3.S3Store``). Every user goes through the protocol (``base.BlobStore``): put,
write_chunks, get, open (a reader, for big blobs), size, exists, delete, and
``local_path`` for the one store that has files. ``copy_all`` moves every blob the
database references to another store (``mailgate blobs copy``).

Imports config, errors, ``blobs.*`` and — for the PostgreSQL store — ``store.blobdb``.
"""

from __future__ import annotations

from mailgate.blobs.base import BlobMissing, BlobStore
from mailgate.blobs.copy import CopyReport, copy_all
from mailgate.blobs.files import FileStore
from mailgate.config import Config
from mailgate.config.blobs import blob_location

__all__ = [
    "BlobMissing",
    "BlobStore",
    "CopyReport",
    "FileStore",
    "copy_all",
    "open_store",
    "store_for_url",
]


def open_store(config: Config) -> BlobStore:
    """The blob store of ``config`` (nothing is connected before its first use)."""
    storage = config.storage
    fsync = storage.sync == "full"
    if blob_location(storage.blob_url).kind == "file":  # the loader made it blob_dir
        return FileStore(storage.blob_dir, fsync=fsync)
    return store_for_url(storage.blob_url, s3_endpoint=storage.s3_endpoint, fsync=fsync)


def store_for_url(
    url: str, *, s3_endpoint: str = "", fsync: bool = False, key: str = "storage.blob_url"
) -> BlobStore:
    """The store a blob URL names (``ValueError`` with one sentence for a URL naming none)."""
    location = blob_location(url, key=key)
    if location.kind == "postgresql":
        from mailgate.blobs.database import DatabaseStore

        return DatabaseStore(location.url)
    if location.kind == "s3":
        from mailgate.blobs.s3 import S3Store

        return S3Store(location.bucket, location.prefix, s3_endpoint)
    return FileStore(location.path, fsync=fsync)
