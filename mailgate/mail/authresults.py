"""Authentication-Results (RFC 8601) from a server we trust: did the sender's domain pass?

A From header is trivially forged; DKIM, DMARC and SPF results are not — as
long as they come from *our* receiving MTA. Three rules:

* only headers above the first ``Received:`` count: our MTA prepends its
  Received header, so everything below it — an Authentication-Results with our
  own server's name included — may have been written by the sender; a mail
  without any Received header has no results we can trust;
* of those, only headers whose authserv-id is in the trusted list, and of them
  the topmost (the last one added);
* SPF alone never vouches for a person: forwarders and shared hosts pass SPF
  for domains that are not theirs. DKIM aligned with the address's domain, or
  DMARC (which checks alignment itself) for it, does.

The MTA must add its own Authentication-Results above its Received header and
remove forged ones (see the README: Postfix, OpenDMARC, rspamd).

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


def added_by_our_mta(names: Sequence[str], values: Sequence[str]) -> list[str]:
    """The Authentication-Results ``values`` (in order) that stand above the first Received.

    ``names`` are the lowercased header names of the mail, in order.
    """
    if "received" not in names:
        return []
    above = names[: names.index("received")].count("authentication-results")
    return list(values[:above])


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


VOUCHING = ("dkim", "dmarc")


def vouches_for(results: Sequence[Pass], address: str) -> Pass | None:
    """A DKIM or DMARC pass aligned with the domain of ``address``; SPF alone never is one."""
    domain = address.rpartition("@")[2].lower()
    for result in results:
        if result.method not in VOUCHING:
            continue
        if domain == result.domain or domain.endswith("." + result.domain):
            return result
    return None
