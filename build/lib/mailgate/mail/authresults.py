"""Authentication-Results (RFC 8601) from a server we trust: did the sender's domain pass?

A From header is trivially forged; DKIM, DMARC and SPF results are not — as
long as they come from *our* receiving MTA. Only headers whose authserv-id is
in the trusted list count, and of those only the topmost (the last one added,
by our own server; a sender can put any header below it). The MTA must add
its own Authentication-Results (Postfix with OpenDKIM/OpenDMARC or rspamd do).

Pure: imports only the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from dataclasses import dataclass

_RESULT = re.compile(r"([a-z0-9_-]+)\s*=\s*([a-z]+)((?:\s+[a-z0-9_.-]+\s*=\s*[^\s;]+)*)", re.I)
_PROPERTY = re.compile(r"([a-z0-9_.-]+)\s*=\s*([^\s;]+)", re.I)
_COMMENT = re.compile(r"\([^()]*\)")


@dataclass(frozen=True)
class Pass:
    method: str  # dkim | dmarc | spf
    domain: str
    server: str

    def __str__(self) -> str:
        return f"{self.method}=pass for {self.domain} at {self.server}"


def passes(values: Sequence[str], trusted: Collection[str]) -> list[Pass]:
    """Domains that passed according to the topmost trusted Authentication-Results header."""
    wanted = {t.lower() for t in trusted}
    for value in values:
        text = _COMMENT.sub(" ", value)
        server, _, rest = text.partition(";")
        server = server.strip().split()[0].lower() if server.strip() else ""
        if server not in wanted:
            continue
        return _read(rest, server)
    return []


def _read(rest: str, server: str) -> list[Pass]:
    found = []
    for clause in rest.split(";"):
        match = _RESULT.search(clause)
        if not match or match.group(2).lower() != "pass":
            continue
        method = match.group(1).lower()
        properties = {k.lower(): v.strip('"').lower() for k, v in _PROPERTY.findall(match.group(3))}
        if method == "dkim":
            domain = properties.get("header.d") or properties.get("header.i", "").rpartition("@")[2]
        elif method == "dmarc":
            domain = properties.get("header.from", "")
        elif method == "spf":
            domain = properties.get("smtp.mailfrom", "").rpartition("@")[2]
        else:
            continue
        if domain:
            found.append(Pass(method, domain, server))
    return found


def vouches_for(results: Sequence[Pass], address: str) -> Pass | None:
    """A result that authenticates the domain of ``address`` (DKIM/DMARC/aligned SPF)."""
    domain = address.rpartition("@")[2].lower()
    for result in results:
        if domain == result.domain or domain.endswith("." + result.domain):
            return result
    return None
