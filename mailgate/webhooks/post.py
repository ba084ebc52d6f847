"""One signed HTTP POST of a delivery, and what the receiver's answer means.

2xx: delivered. 5xx, 408, 429, a timeout, a refused or broken connection: try
again later. Any other answer (4xx, and 3xx — a redirect is never followed, to
another host least of all): failed, with the status line. The secret signs the
body here and goes nowhere else: not into errors, not into logs.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
from dataclasses import dataclass
from email.message import Message
from typing import Any

from mailgate import __version__

TIMEOUT = 10.0
SIGNATURE_HEADER = "X-Mailgate-Signature"
_RETRY = (408, 429)


@dataclass(frozen=True)
class Answer:
    """What became of one POST: ``ok``, or ``temporary``/permanent with a one-line error."""

    ok: bool
    temporary: bool = False
    error: str = ""
    retry_after: int | None = None  # seconds the receiver asked us to wait (429/503)


def signature(secret: bytes, body: bytes) -> str:
    """The ``X-Mailgate-Signature`` value: ``sha256=`` and the hex HMAC-SHA256 of the body."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


@functools.cache
def _opener() -> Any:
    """urllib's opener that never follows a redirect, built at the first POST."""
    import urllib.request

    class NoRedirects(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # urllib then raises HTTPError with the 3xx

    return urllib.request.build_opener(NoRedirects)


def post(url: str, body: bytes, *, secret: bytes, event: str, delivery_id: str) -> Answer:
    # Imported here: only the thread that posts needs urllib.request and http.client
    # (about half a MiB), not the ingest worker that queues deliveries, nor a serve
    # without webhooks (bench/memory.py).
    import http.client
    import urllib.error
    import urllib.request

    # The loader admits http(s) URLs only: no file:, no custom scheme reaches here.
    request = urllib.request.Request(  # noqa: S310
        url,
        data=body,
        method="POST",
        headers={
            "Content-Type": "application/json",
            "User-Agent": f"mailgate/{__version__}",
            SIGNATURE_HEADER: signature(secret, body),
            "X-Mailgate-Event": event,
            "X-Mailgate-Delivery": delivery_id,
        },
    )
    try:
        with _opener().open(request, timeout=TIMEOUT) as response:
            response.read(65536)  # the answer's body is not ours to keep
            status, reason = int(response.status), str(response.reason)
    except urllib.error.HTTPError as exc:
        return _refused(exc.code, str(exc.reason), exc.headers)
    except urllib.error.URLError as exc:
        return Answer(False, True, f"cannot connect: {_why(exc.reason)}")
    except TimeoutError:
        return Answer(False, True, f"no answer within {TIMEOUT:g} s")
    except (OSError, http.client.HTTPException) as exc:
        return Answer(False, True, f"connection failed: {_why(exc)}")
    if 200 <= status < 300:
        return Answer(True)
    return _refused(status, reason, None)


def _refused(code: int, reason: str, headers: Message | None) -> Answer:
    line = f"HTTP {code} {reason}".strip()
    if 300 <= code < 400:
        where = (headers.get("Location", "") if headers is not None else "") or "no Location"
        return Answer(False, False, f"{line}: redirects are not followed ({where})")
    if code >= 500 or code in _RETRY:
        return Answer(False, True, line, _retry_after(headers))
    return Answer(False, False, line)


def _retry_after(headers: Message | None) -> int | None:
    value = headers.get("Retry-After", "") if headers is not None else ""
    return int(value) if value.strip().isdigit() else None


def _why(reason: object) -> str:
    if isinstance(reason, TimeoutError):
        return f"no answer within {TIMEOUT:g} s"
    if isinstance(reason, OSError) and reason.strerror:
        return reason.strerror
    return str(reason) or type(reason).__name__
