"""Relative paths in the config file are relative to the file's own directory.

The pipe runs in Postfix's queue directory, serve in its own, an admin's command
wherever the admin is: a path resolved against the working directory gave each of
them its own database and secret key (a new key silently invalidates every reply
address in circulation). Resolved once, when the file is loaded, so the rest of
mailgate sees absolute paths only. Imports the standard library and the sections.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

from mailgate.config.sections import Config

# Per table: the keys that name files or directories (commands and URLs aside).
_PATH_KEYS: dict[str, tuple[str, ...]] = {
    "gateway": ("secret_key_file",),
    "storage": ("blob_dir",),
    "templates": ("dir",),
    "listener": ("socket", "tls_cert", "tls_key"),
}
_EACH: dict[str, tuple[str, ...]] = {
    "mailboxes": ("templates",),
    "agents": ("smtp_password_file",),
    "imap": ("password_file", "oauth2_refresh_token_file"),
    "webhooks": ("secret_file",),
}


def resolve_paths(config: Config) -> Config:
    """``config`` with every relative path made absolute against its file's directory."""
    base = Path(config.path).absolute().parent
    changes: dict[str, Any] = {}
    for table, keys in _PATH_KEYS.items():
        changes[table] = _resolved(getattr(config, table), keys, base)
    for table, keys in _EACH.items():
        changes[table] = tuple(_resolved(item, keys, base) for item in getattr(config, table))
    outbound = config.outbound
    changes["outbound"] = dataclasses.replace(
        outbound,
        maildir=_path(outbound.maildir, base),
        smtp=_resolved(outbound.smtp, ("password_file",), base),
    )
    changes["database"] = dataclasses.replace(
        config.database, url=_sqlite_url(config.database.url, base)
    )
    return dataclasses.replace(config, **changes)


def _resolved(section: Any, keys: tuple[str, ...], base: Path) -> Any:
    return dataclasses.replace(section, **{k: _path(getattr(section, k), base) for k in keys})


def _path(value: str, base: Path) -> str:
    if not value or os.path.isabs(value):
        return value
    return str(base / value)


def _sqlite_url(url: str, base: Path) -> str:
    """``sqlite:///var/mailgate.db`` (relative) → ``sqlite:////etc/mailgate/var/mailgate.db``."""
    scheme, sep, rest = url.partition("://")
    if scheme != "sqlite" or not sep or not rest.startswith("/"):
        return url
    path, query_sep, query = rest[1:].partition("?")
    if not path or path == ":memory:" or os.path.isabs(path):
        return url
    return f"sqlite:///{base / path}{query_sep}{query}"
