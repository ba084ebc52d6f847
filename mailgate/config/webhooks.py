"""The ``[[webhook]]`` tables checked, and a hook's signing secret read.

The events a hook may name live here (the loader checks them, the webhooks
package maps ticket events onto them). The secret is never in the config file:
``secret_env`` names an environment variable, ``secret_file`` a file; exactly one
of them. It is read when a delivery is signed (``read_webhook_secret``) and by
``mailgate check``, never logged.

Imports the standard library, ``mailgate.errors`` and the sections.
"""

from __future__ import annotations

import os
import typing
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from mailgate.config.web import Webhook
from mailgate.errors import ConfigError

# Every event a hook can subscribe to, in the order the README lists them.
WEBHOOK_EVENTS = (
    "ticket.created",
    "message.received",
    "message.sent",
    "ticket.assigned",
    "ticket.status_changed",
    "ticket.priority_changed",
    "ticket.team_changed",
    "ticket.merged",
    "sla.warning",
    "sla.breached",
    "csat.rated",
)


def check_webhooks(hooks: tuple[Webhook, ...], fail: Callable[[str, str], typing.NoReturn]) -> None:
    """Each hook: an http(s) URL with a host (one hook per URL), known events, one secret."""
    seen: dict[str, int] = {}
    for i, hook in enumerate(hooks):
        where = f"webhook[{i}]"
        url = hook.url
        try:
            parts = urlsplit(url)
            host = parts.hostname
            parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        except ValueError:
            fail(f"{where}.url", f"{hook.url!r} is not a URL")
        if parts.scheme not in ("http", "https") or not host or any(c.isspace() for c in url):
            fail(f"{where}.url", f"an http:// or https:// URL with a host, not {hook.url!r}")
        if parts.username or parts.password:
            fail(f"{where}.url", "no credentials in the URL: the signature authenticates us")
        if url in seen:
            fail(
                f"{where}.url",
                f"the same URL as webhook[{seen[url]}]; list all its events in one [[webhook]]",
            )
        seen[url] = i
        if not hook.events:
            fail(f"{where}.events", f"name at least one event: {', '.join(WEBHOOK_EVENTS)}")
        for j, name in enumerate(hook.events):
            if name not in WEBHOOK_EVENTS:
                fail(
                    f"{where}.events[{j}]",
                    f"unknown event {name!r}; one of {', '.join(WEBHOOK_EVENTS)}",
                )
        if bool(hook.secret_env) == bool(hook.secret_file):
            fail(
                f"{where}.secret_env",
                "name the signing secret with exactly one of secret_env or secret_file",
            )


def read_webhook_secret(hook: Webhook, index: int) -> bytes:
    """The hook's signing secret, from its environment variable or file (stripped).

    A ``ConfigError`` line naming the key when it is unset, unreadable or empty.
    """
    where = f"webhook[{index}]"
    if hook.secret_env:
        value = os.environ.get(hook.secret_env)
        if value is None:
            raise ConfigError(
                f"{where}.secret_env: environment variable {hook.secret_env} is not set"
            )
        key = f"{where}.secret_env: environment variable {hook.secret_env}"
    else:
        try:
            value = Path(hook.secret_file).read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"{where}.secret_file: cannot read {hook.secret_file}: {exc.strerror}"
            ) from None
        key = f"{where}.secret_file: {hook.secret_file}"
    if not value.strip():
        raise ConfigError(f"{key} is empty")
    return value.strip().encode()
