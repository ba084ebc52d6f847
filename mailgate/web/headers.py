"""Middleware every response passes: security headers, and X-Forwarded-* from trusted proxies.

Pages get a strict Content-Security-Policy (our own scripts and styles only, no
frames but our own sandboxed ones); a page can set a stricter one itself.
``X-Forwarded-For``/``-Proto`` are believed only when the connection comes from an
address in ``[web] trusted_proxies``; from anyone else they are ignored.
"""

from __future__ import annotations

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
    """The client's address and scheme as a trusted reverse proxy reports them."""

    def __init__(self, app: ASGIApp, proxies: tuple[str, ...] = ()) -> None:
        self.app = app
        self.proxies = set(proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and self.proxies:
            client = scope.get("client")
            if client and client[0] in self.proxies:
                headers = dict(scope["headers"])
                forwarded = headers.get(b"x-forwarded-for", b"").decode("latin-1")
                hops = [h.strip() for h in forwarded.split(",") if h.strip()]
                # The nearest hop not itself a trusted proxy is the client.
                while hops and hops[-1] in self.proxies:
                    hops.pop()
                scope = dict(scope)
                if hops:
                    scope["client"] = (hops[-1], 0)
                proto = headers.get(b"x-forwarded-proto", b"").decode("latin-1").strip()
                if proto in ("http", "https"):
                    scope["scheme"] = proto
        await self.app(scope, receive, send)
