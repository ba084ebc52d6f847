"""The config of the web desk (``[web]``) and of webhooks (``[[webhook]]``).

Part of the schema (``sections.py`` holds ``Config``, which has these as fields);
imports only the standard library. Secrets (a webhook's signing key) are named by
an environment variable or a file, never written here.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import NoReturn


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
    # Processes serving the desk on the one port: a page's Python runs on one core per
    # process, so one process could use only one of a machine's cores however many
    # agents browse (issue 15). Each more costs a process's memory (~60 MB).
    # 0: the default — 2 for `mailgate web`, 1 inside `serve` (intake first).
    workers: int = 0
    # Inside `serve`, while mail is arriving, the desk keeps to this share of one CPU
    # (pages wait their turn, intake keeps its rate: issue 15); 1: no limit.
    intake_share: float = 0.2

    def processes(self, inside_serve: bool) -> int:
        """How many processes serve the desk (``workers``, or its default)."""
        return self.workers or (1 if inside_serve else 2)


def check_web(web: Web, fail: Callable[[str, str], NoReturn]) -> None:
    """Validate ``[web]``: ``fail(key, why)`` raises the loader's one-line error."""
    if web.listen:
        host, _, port = web.listen.rpartition(":")
        if not host or not port.isdigit() or int(port) > 65535 or not _is_host(host):
            fail("web.listen", f'{web.listen!r} is not "host:port" (e.g. "127.0.0.1:8025")')
    if web.root_path and (not web.root_path.startswith("/") or web.root_path.endswith("/")):
        fail(
            "web.root_path",
            f'{web.root_path!r} must start with "/" and not end with one (e.g. "/helpdesk");'
            " empty for none",
        )
    if web.session_hours < 1:
        fail("web.session_hours", "must be at least 1")
    if not 0 <= web.workers <= 32:
        fail("web.workers", f"must be from 1 to 32 (0: the default), not {web.workers}")
    if not 0.05 <= web.intake_share <= 1.0:
        fail("web.intake_share", f"must be from 0.05 to 1 (1: no limit), not {web.intake_share}")
    for i, proxy in enumerate(web.trusted_proxies):
        try:
            ipaddress.ip_network(proxy, strict=False)
        except ValueError:
            fail(f"web.trusted_proxies[{i}]", f"{proxy!r} is not an IP address (or network)")
    if web.public_url and not re.match(r"https?://[^/\s]+(/\S*)?$", web.public_url):
        fail("web.public_url", f"{web.public_url!r} is not an http:// or https:// URL")


def _is_host(host: str) -> bool:
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        try:
            return ipaddress.ip_address(host).version == 6
        except ValueError:
            return False
    return bool(re.fullmatch(r"[A-Za-z0-9.-]+", host))


@dataclass(frozen=True)
class Webhook:
    """A URL told about ticket events, each POST signed with the hook's secret."""

    url: str
    # ticket.created, message.received, ticket.assigned, ticket.status_changed, sla.breached…
    events: tuple[str, ...] = ()
    secret_env: str = ""
    secret_file: str = ""
