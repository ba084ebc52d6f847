"""The config of the web desk (``[web]``) and of webhooks (``[[webhook]]``).

Part of the schema (``sections.py`` holds ``Config``, which has these as fields);
imports only the standard library. Secrets (a webhook's signing key) are named by
an environment variable or a file, never written here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Web:
    """The desk: pages for agents, the JSON API, ``/metrics``. Empty ``listen``: off."""

    # "host:port" the desk listens on ("127.0.0.1:8025"); port 0 picks a free one.
    listen: str = ""
    # The path prefix a reverse proxy serves the desk under ("/helpdesk"); empty: none.
    root_path: str = ""
    # Addresses of reverse proxies whose X-Forwarded-For/-Proto are believed.
    trusted_proxies: tuple[str, ...] = ()
    # Send the session cookie only over HTTPS (set when a TLS proxy is in front).
    secure_cookies: bool = False
    # A session ends after this many hours without a request.
    session_hours: int = 12
    # The address agents reach the desk at (links in login mails); empty: from `listen`.
    public_url: str = ""


@dataclass(frozen=True)
class Webhook:
    """A URL told about ticket events, each POST signed with the hook's secret."""

    url: str
    # ticket.created, message.received, ticket.assigned, ticket.status_changed, sla.breached…
    events: tuple[str, ...] = ()
    secret_env: str = ""
    secret_file: str = ""
