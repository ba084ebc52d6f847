"""``storage.blob_url``: where the blobs live, read and checked once when the file is loaded.

``file:///path`` or a plain path is the local folder (what ``blob_dir`` says; a relative
path is relative to the config file), ``postgresql://…`` a table in PostgreSQL (may be the
gateway's own database), ``s3://bucket/prefix`` an S3-compatible object store (endpoint
``storage.s3_endpoint``; credentials only from the environment). Setting both
``blob_dir`` and ``blob_url`` is an error: which one would win is a guess. Imports the
standard library, errors and the sections.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from mailgate.config.sections import Config
from mailgate.errors import ConfigError

POSTGRES_SCHEMES = ("postgresql", "postgres", "psycopg2", "postgresql+psycopg2")


@dataclass(frozen=True)
class BlobLocation:
    kind: Literal["file", "postgresql", "s3"]
    path: str = ""  # file
    url: str = ""  # postgresql
    bucket: str = ""  # s3
    prefix: str = ""  # s3


def blob_location(
    url: str, *, blob_dir: str = "var/blobs", key: str = "storage.blob_url"
) -> BlobLocation:
    """What a blob URL names; ``ValueError`` with one sentence when it names nothing."""
    if not url:
        return BlobLocation("file", path=blob_dir)
    scheme, sep, rest = url.partition("://")
    if not sep:
        return BlobLocation("file", path=url)
    if scheme == "file":
        parts = urlsplit(url)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise ValueError(f"{key}: a file URL is file:///absolute/path, not {url!r}")
        return BlobLocation("file", path=unquote(parts.path))
    if scheme in POSTGRES_SCHEMES:
        if not rest or (rest.startswith("/") and len(rest) == 1):
            raise ValueError(f"{key}: name the database, e.g. postgresql://host/mailgate")
        return BlobLocation("postgresql", url=url)
    if scheme == "s3":
        bucket, _slash, prefix = rest.partition("/")
        if "@" in bucket or ":" in bucket:
            raise ValueError(
                f"{key}: credentials do not belong in the config file; use"
                " AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY"
            )
        if not bucket:
            raise ValueError(f"{key}: an S3 URL is s3://bucket/prefix, not {url!r}")
        return BlobLocation("s3", bucket=bucket, prefix=prefix.strip("/"))
    raise ValueError(
        f"{key}: unsupported blob store {scheme!r}; use a path, file:///path, "
        "postgresql://… or s3://bucket/prefix"
    )


def check_both_set(data: dict[str, Any], path: Path) -> None:
    """``blob_dir`` and ``blob_url`` both written in the file (not a default): refuse."""
    storage = data.get("storage")
    if isinstance(storage, dict) and "blob_dir" in storage and "blob_url" in storage:
        raise ConfigError(
            "storage.blob_url: set either blob_dir or blob_url, not both"
            f" (blob_url = {storage['blob_url']!r}) (in {path})"
        )


def resolve_blob_url(config: Config, path: Path) -> Config:
    """``config`` with a file ``blob_url`` made the (absolute) ``blob_dir``; checks the rest."""
    storage = config.storage
    try:
        location = blob_location(storage.blob_url, blob_dir=storage.blob_dir)
    except ValueError as exc:
        raise ConfigError(f"{exc} (in {path})") from None
    if storage.s3_endpoint and location.kind != "s3":
        raise ConfigError(f"storage.s3_endpoint: only for an s3:// blob_url (in {path})")
    if storage.s3_endpoint and not storage.s3_endpoint.startswith(("http://", "https://")):
        raise ConfigError(
            f"storage.s3_endpoint: a URL like https://s3.example.org, not "
            f"{storage.s3_endpoint!r} (in {path})"
        )
    if location.kind == "s3" and "@" in storage.s3_endpoint:
        raise ConfigError(
            "storage.s3_endpoint: credentials do not belong in the config file; use"
            f" AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (in {path})"
        )
    if location.kind != "file" or not storage.blob_url:
        return config
    folder = location.path
    if not os.path.isabs(folder):
        folder = str(Path(config.path).absolute().parent / folder)
    return dataclasses.replace(config, storage=dataclasses.replace(storage, blob_dir=folder))
