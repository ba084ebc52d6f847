"""The effective configuration as an admin may read it: every setting, no secret.

The config file only *names* secrets (``*_env``, ``*_file``); those names are shown,
never what they point at. What could still carry one is hidden here: a URL's password
and query values (``database.url``), a webhook URL beyond its host (hook URLs often
*are* the credential), any key that sounds like a secret, and — as a last net — the
value of every environment variable a ``*_env`` key names, wherever it would appear.
Used by the web desk's admin page; imports config and logs only.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from mailgate.config import SECRET_ENV, Config
from mailgate.config.loader import _TABLE_ARRAYS
from mailgate.logs import redact_url

HIDDEN = "(hidden)"
# Keys as the file spells them: [[mailbox]] for the field ``mailboxes``.
_TABLE_NAMES = {field: table for table, field in _TABLE_ARRAYS.items()}
# A key with one of these words that is no *_env/*_file name holds a secret itself.
SECRET_WORDS = ("password", "secret", "token", "hash", "credential", "private")


def settings(config: Config) -> list[tuple[str, str]]:
    """(dotted key, value as TOML would write it) for every setting, secrets hidden."""
    found: list[tuple[str, str]] = []
    _walk(config, "", found)
    secrets = _env_secrets(found)
    return [(key, _scrub(value, secrets)) for key, value in found]


def _walk(value: Any, key: str, found: list[tuple[str, str]]) -> None:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        for field in dataclasses.fields(value):
            if field.name.startswith("_") or field.name == "path":
                continue
            name = field.name if key else _TABLE_NAMES.get(field.name, field.name)
            _walk(getattr(value, field.name), f"{key}.{name}" if key else name, found)
    elif isinstance(value, tuple) and value and all(dataclasses.is_dataclass(v) for v in value):
        for i, item in enumerate(value):
            _walk(item, f"{key}[{i}]", found)
    else:
        found.append((key, _shown(key, value)))


def _shown(key: str, value: Any) -> str:
    name = key.rsplit(".", 1)[-1]
    if name.endswith(("_env", "_file")):
        return _text(value)  # the name of the secret, not the secret
    if any(word in name for word in SECRET_WORDS) and value:
        return HIDDEN
    if name == "url" and key.startswith("webhook["):
        return _text(_origin(str(value)))
    if (name == "url" or name.endswith("_url")) and value:
        return _text(_url(str(value)))
    return _text(value)


def _text(value: Any) -> str:
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, bool | int | float | str | list | type(None)):
        return json.dumps(value, ensure_ascii=False, default=str)
    return json.dumps(str(value), ensure_ascii=False)


def _url(url: str) -> str:
    """The password and every query value replaced (libpq takes ``?password=`` too)."""
    parts = urlsplit(redact_url(url))
    if not parts.query:
        return urlunsplit(parts)
    query = urlencode([(k, "***") for k, _v in parse_qsl(parts.query, keep_blank_values=True)])
    return urlunsplit(parts._replace(query=query))


def _origin(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    rest = "/…" if parts.path.strip("/") or parts.query else "/"
    return f"{parts.scheme}://{host}{port}{rest}"


def _env_secrets(found: list[tuple[str, str]]) -> list[str]:
    """The values of the environment variables the config names as secrets."""
    secrets = [os.environ.get(SECRET_ENV, "")]
    for key, value in found:
        if key.endswith("_env") and value not in ('""', "null"):
            secrets.append(os.environ.get(json.loads(value), ""))
    # Shorter is no secret worth hiding, and would hide too much.
    return [s for s in secrets if len(s) >= 4]


def _scrub(value: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret in value or json.dumps(secret)[1:-1] in value:
            return HIDDEN
    return value
