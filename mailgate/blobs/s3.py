"""The blob store in an S3-compatible object store (``storage.blob_url = s3://bucket/prefix``).

Each blob is the object ``<prefix>/<sha256>``. The endpoint comes from
``storage.s3_endpoint`` (empty: AWS itself); credentials and region from the usual AWS
environment variables (``AWS_ACCESS_KEY_ID``, ``AWS_SECRET_ACCESS_KEY``,
``AWS_DEFAULT_REGION``, or a profile) — never from the config file. An object store
that cannot be reached, or answers 5xx or throttles, is a ``TemporaryFailure``: the
sender retries and nothing is lost. Imports boto3 (the optional extra ``s3``),
``blobs.base`` and errors.
"""

from __future__ import annotations

import hashlib
import io
import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, BinaryIO

from mailgate.blobs.base import check_sha256, missing, spool
from mailgate.errors import ConfigError, TemporaryFailure

_MISSING = ("404", "NoSuchKey", "NotFound")


class S3Store:
    def __init__(self, bucket: str, prefix: str, endpoint: str = "") -> None:
        try:
            import boto3
            import botocore.config
            import botocore.exceptions
        except ImportError:
            raise ConfigError(
                "storage.blob_url: s3:// needs boto3 (pip install 'mailgate[s3]')"
            ) from None
        self.bucket, self.prefix, self.endpoint = bucket, prefix.strip("/"), endpoint
        self._errors = botocore.exceptions
        self._boto3 = boto3
        self._config = botocore.config.Config(
            retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=10, read_timeout=60
        )
        self._local = threading.local()

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}" if self.prefix else f"s3://{self.bucket}"

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        # A client per thread (sessions are not thread-safe) and per process (a forked
        # worker must not share its parent's connections).
        if client is None or self._local.pid != os.getpid():
            session = self._boto3.session.Session()
            client = session.client("s3", endpoint_url=self.endpoint or None, config=self._config)
            self._local.client, self._local.pid = client, os.getpid()
        return client

    def _key(self, sha256: str) -> str:
        check_sha256(sha256)
        return f"{self.prefix}/{sha256}" if self.prefix else sha256

    def _call(self, what: str, sha256: str, **kwargs: Any) -> Any:
        try:
            return getattr(self._client(), what)(
                Bucket=self.bucket, Key=self._key(sha256), **kwargs
            )
        except self._errors.ClientError as exc:
            error = exc.response.get("Error", {})
            code = str(error.get("Code", ""))
            status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0))
            if code == "NoSuchBucket":
                raise TemporaryFailure(f"blob store {self.url}: no bucket {self.bucket!r}") from exc
            if code in _MISSING or status == 404:
                raise missing(sha256, self.url) from None
            if status >= 500 or status in (408, 429) or "Throttl" in code or "SlowDown" in code:
                raise TemporaryFailure(f"blob store {self.url}: {code} {status}") from exc
            raise TemporaryFailure(
                f"blob store {self.url}: {what} refused: {code} {error.get('Message', '')}"
            ) from exc
        except (self._errors.BotoCoreError, OSError) as exc:
            raise TemporaryFailure(f"blob store {self.url}: {exc}") from exc

    def put(self, data: bytes, sha256: str | None = None) -> str:
        sha256 = sha256 or hashlib.sha256(data).hexdigest()
        self._call("put_object", sha256, Body=data)
        return sha256

    def write_chunks(self, chunks: Iterable[bytes]) -> tuple[str, int]:
        sha256, size, buffer = spool(chunks)
        with buffer:
            self._call("put_object", sha256, Body=buffer, ContentLength=size)
        return sha256, size

    def get(self, sha256: str) -> bytes:
        body = self._call("get_object", sha256)["Body"]
        try:
            return bytes(body.read())
        except (self._errors.BotoCoreError, OSError) as exc:
            raise TemporaryFailure(f"blob store {self.url}: {exc}") from exc
        finally:
            body.close()

    def open(self, sha256: str) -> BinaryIO:
        body = self._call("get_object", sha256)["Body"]
        return io.BufferedReader(_Body(body, self._errors.BotoCoreError), 1 << 20)

    def size(self, sha256: str) -> int:
        return int(self._call("head_object", sha256)["ContentLength"])

    def exists(self, sha256: str) -> bool:
        try:
            self._call("head_object", sha256)
        except FileNotFoundError:
            return False
        return True

    def delete(self, sha256: str) -> None:
        self._call("delete_object", sha256)

    def local_path(self, sha256: str) -> Path | None:
        return None

    def location(self, sha256: str) -> str:
        return f"{self.url}/{sha256}"


class _Body(io.RawIOBase):
    """boto3's streaming body as a raw reader."""

    def __init__(self, body: Any, errors: type[Exception]) -> None:
        self.body, self.errors = body, errors

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        try:
            data = self.body.read(len(buffer))
        except self.errors as exc:  # a reader's callers expect OSError
            raise OSError(f"blob store: {exc}") from exc
        buffer[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self.body.close()
        super().close()
