"""Address headers (From, To, Cc, Reply-To, Sender) as ``Address`` values.

Pure: imports only the standard library, mail-parser's address parser and
``mailgate.mail.charsets``.

Two parsers, each where it is better (measured on the shared corpus, 68 header
values on which they disagree):

* mail-parser's ``get_addresses`` reads the pairs: it keeps ``alice@x <bob@y>`` as
  one address with a display name (the stdlib makes two addresses of it), reads
  ``Mikel@Lindsaar <raasdnil@…>`` right, and drops the empty entries of
  ``, user@aol.com``.
* The stdlib's ``getaddresses`` is used for what mail-parser drops: the display
  name of an entry without a usable address (``MAILER-DAEMON <>``, ``Mail
  Delivery Subsystem <MAILER-DAEMON>``, ``From: Support Team``), and as the
  fallback when mail-parser finds nothing or raises.
* Display names are decoded by ``charsets.decode_header`` in both cases: mail-parser
  leaves quoted encoded words (``"=?utf-8?b?…?="``) undecoded.

A quoted local part (``"john doe"@example.com``) stays quoted: it is a different
mailbox from ``john.doe@``, and a reply must reach it.

Most header values are plain (``Name <a@b>``, ``"Name" <a@b>``, ``a@b``, lists of
these): ``plain_pairs`` reads those with one regular expression, on which both
parsers agree (checked on every address header of the shared corpus and the
benchmark corpus), at a tenth of mail-parser's cost. Anything else — comments,
groups, encoded words, quoted pairs, obsolete forms, broken input — goes to the
parsers above.
"""

from __future__ import annotations

import email.utils
import re
import unicodedata
from dataclasses import dataclass

from mailgate.mail.charsets import decode_header, raw_text

# A header value longer than this is cut before either parser sees it: 33,000 Cc
# fit in it, a hostile megabyte does not make the parse slow.
MAX_ADDRESS_HEADER = 1_000_000


@dataclass(frozen=True)
class Address:
    email: str
    name: str = ""

    def __str__(self) -> str:
        """``Name <addr>`` in Unicode, for display and storage (not for the wire)."""
        if not self.name:
            return self.email
        name = self.name.replace("\\", "").replace('"', "")
        if any(c in name for c in "()<>@,;:.[]"):
            name = f'"{name}"'
        return f"{name} <{self.email}>"


# The plain forms: a dot-atom address, bare or in angle brackets after a display name
# of plain words and encoded words, or a quoted string (no backslash, no encoded word).
_LOCAL = r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
_DOMAIN = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*"
# A word of a display name: an atom of letters and digits, or an encoded word.
_NAME_WORD = r"(?:[A-Za-z0-9_'-]+|=\?[A-Za-z0-9_-]{1,40}\?[BbQq]\?[A-Za-z0-9=_.+/!*-]{0,300}\?=)"
_PLAIN_ITEM = re.compile(
    rf"""[ \t\r\n]*(?:
        (?P<bare>{_LOCAL}@{_DOMAIN})
      | (?:(?P<words>{_NAME_WORD}(?:(?:\r?\n)?[\x20\t]{_NAME_WORD})*)(?:\r?\n)?[\x20\t]
         | "(?P<quoted>[^"\\\r\n=]*)"[ \t]*
        )?<(?P<angle>{_LOCAL}@{_DOMAIN})>
    )[ \t\r\n]*(?:,|$)""",
    re.VERBOSE,
)


def plain_pairs(value: str) -> list[tuple[str, str]] | None:
    """(display name, address) of each entry of a plain header value; None when the
    value is anything but plain (then the full parsers read it)."""
    if not value.isascii() or not value.strip() or len(value) > MAX_ADDRESS_HEADER:
        return None
    pairs: list[tuple[str, str]] = []
    pos, end = 0, len(value)
    while pos < end:
        match = _PLAIN_ITEM.match(value, pos)
        if match is None:
            return None
        bare, words, quoted, angle = match.group("bare", "words", "quoted", "angle")
        if bare is not None:
            pairs.append(("", bare))
        else:
            pairs.append((words or quoted or "", angle))
        pos = match.end()
        if pos == end and value.endswith(","):
            return None  # an empty last entry: the parsers' business
    return pairs


def read_addresses(values: list[str], defects: list[str], what: str) -> list[Address]:
    """Every address in the values of one header, in order."""
    result: list[Address] = []
    # Raw 8-bit text (surrogate escapes) is decoded first; encoded words are ASCII
    # and stay for the parsers, which must see the quotes and commas around them.
    values = [raw_text(v) for v in values]
    plain = [plain_pairs(v) for v in values] if len(values) == 1 else [None]
    if plain[0] is not None:
        for display, addr in plain[0]:
            clean = clean_address(addr)
            if clean:
                result.append(Address(clean, display_name(display, clean)))
        if result:
            return result
    # Imported here: most headers are plain pairs, and importing mail-parser (all of it,
    # with its large address regexes) cost every process some 50 ms at start.
    from mailparser.utils import get_addresses

    try:
        for value in values:
            for display, addr in get_addresses(
                value[:MAX_ADDRESS_HEADER], defects=[], decode_names=True
            ):
                clean = clean_address(addr)
                if clean:
                    result.append(Address(clean, display_name(display, clean)))
    except Exception as exc:  # noqa: BLE001 - mail-parser failing is what we fall back for
        defects.append(f"mail-parser could not read {what}: {type(exc).__name__}: {exc}")
        result = []
    return result or _stdlib_addresses(values)


def _stdlib_addresses(values: list[str]) -> list[Address]:
    result = []
    for display, addr in email.utils.getaddresses([v[:MAX_ADDRESS_HEADER] for v in values]):
        addr = clean_address(decode_header(addr))
        if addr:
            result.append(Address(addr, display_name(decode_header(display), addr)))
    if not result:
        result = [a for a in map(_name_then_address, values) if a is not None]
    return result


# "Big Bug bb@bug.com": a name and a bare address without the angle brackets.
_TRAILING_ADDRESS = re.compile(r"^(.{1,200}?)\s+<?([^\s<>@]{1,64}@[^\s<>@]{1,255}?)>?$")


def _name_then_address(value: str) -> Address | None:
    match = _TRAILING_ADDRESS.match(one_line(decode_header(value))[:600])
    if not match:
        return None
    addr = clean_address(match.group(2))
    return Address(addr, display_name(match.group(1), addr)) if addr else None


def from_name_and_raw(values: list[str]) -> tuple[str, str]:
    """The From header as the sender meant it: (display name, whole value), one line each.

    Kept for mail whose From has no usable address ("From: Support Team",
    "From: MAILER-DAEMON <>", "From: undisclosed"): the ticket still shows who wrote.
    """
    if not values:
        return "", ""
    raw = one_line(decode_header(values[0]))[:998]
    name = ""
    pairs = plain_pairs(values[0]) or email.utils.getaddresses([values[0][:MAX_ADDRESS_HEADER]])
    if pairs:
        display, addr = pairs[0]
        name = display_name(decode_header(display), clean_address(decode_header(addr)))
    if not name and "@" not in raw and "<" not in raw:
        # No address at all: the whole value is the name ("Support Team", "undisclosed").
        name = raw.strip().strip('"').strip()
    return name[:300], raw


def display_name(name: str, addr: str) -> str:
    name = decode_header(name) if ("=?" in name or _has_surrogates(name)) else name
    name = one_line(name).strip().strip('"').strip()
    return "" if name.lower() == addr.lower() else name


def clean_address(addr: str) -> str:
    """'<Bob@Example.ORG>' -> 'Bob@example.org'; '' when it is not an address.

    Spaces are allowed only inside a quoted local part.
    """
    addr = one_line(addr).strip().strip("<>").strip()
    if "@" not in addr:
        return ""
    local, _, domain = addr.rpartition("@")
    quoted = len(local) >= 2 and local[0] == '"' and local[-1] == '"'
    if not local or not domain or " " in domain or (" " in local and not quoted):
        return ""
    return f"{local}@{domain.lower()}"


def one_line(text: str) -> str:
    """Header text with no line breaks or control characters: it can never inject a header."""
    if text.isprintable():
        return text.strip()
    cleaned = "".join(" " if unicodedata.category(c)[0] == "C" else c for c in text)
    return " ".join(cleaned.split())


def _has_surrogates(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False
