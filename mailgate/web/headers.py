"""Middleware every response passes: security headers, and X-Forwarded-* from trusted proxies.

Pages get a strict Content-Security-Policy (our own scripts and styles only, no
frames but our own sandboxed ones); a page can set a stricter one itself.
``X-Forwarded-For``/``-Proto`` are believed only when the connection comes from an
address in ``[web] trusted_proxies``; from anyone else they are ignored.
"""

from __future__ import annotations

import ipaddress

from starlette.types import ASGIApp, Message, Receive, Scope, Send

DEFAULT_HEADERS = {
    b"content-security-policy": (
        b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        b"frame-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"same-origin",
    b"x-frame-options": b"DENY",
}


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                for name, value in DEFAULT_HEADERS.items():
                    if name not in present:
                        headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


class TrustedProxies:
    """The client's address and scheme as a trusted reverse proxy reports them.

    ``proxies`` are addresses or networks (``10.0.0.0/8``). Only when the connection
    comes from one of them are ``X-Forwarded-For`` (every such header, in order)
    and ``X-Forwarded-Proto`` read: the client is the nearest hop that is not itself
    a trusted proxy — what our own proxy saw, not what the client claims further
    left. A hop that is not an IP address ends the search: the proxy stays the client.
    """

    def __init__(self, app: ASGIApp, proxies: tuple[str, ...] = ()) -> None:
        self.app = app
        self.proxies = tuple(ipaddress.ip_network(p, strict=False) for p in proxies)

    def trusted(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address.strip().strip("[]"))
        except ValueError:
            return False
        if ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        return any(ip in network for network in self.proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client") if scope["type"] == "http" else None
        if self.proxies and client and self.trusted(client[0]):
            scope = dict(scope)
            forwarded = b",".join(v for k, v in scope["headers"] if k == b"x-forwarded-for")
            hops = [h.strip() for h in forwarded.decode("latin-1").split(",") if h.strip()]
            while hops and self.trusted(hops[-1]):
                hops.pop()
            if hops and _is_ip(hops[-1]):
                scope["client"] = (hops[-1].strip("[]"), 0)
            protos = [v for k, v in scope["headers"] if k == b"x-forwarded-proto"]
            proto = protos[-1].decode("latin-1").split(",")[-1].strip().lower() if protos else ""
            if proto in ("http", "https"):
                scope["scheme"] = proto
        await self.app(scope, receive, send)


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_address(value.strip("[]"))
    except ValueError:
        return False
    return True
