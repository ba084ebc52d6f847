"""Bytes to text the way mail really is labelled: charset mislabels, RFC 2047 words.

Pure: imports only the standard library. Used for every body part and every
header we show, so no input can make it raise: an unknown or wrong label
degrades to the best guess, with replacement characters as the last resort,
and a note for the mail's defect list.

Why not just ``bytes.decode(label)``: senders routinely label windows-1252 as
iso-8859-1 (curly quotes and € become C1 controls), GBK as GB2312 (the decode
fails on the extra characters), and ISO-2022-JP with Microsoft's extensions
(circled numbers, NEC/IBM kanji) as plain ISO-2022-JP. Browsers and mature mail
clients decode these as the superset; so do we.
"""

from __future__ import annotations

import binascii
import codecs
import re

# A label (as Python's codec registry normalises it) → the superset codec actually used.
_SUPERSETS = {
    "latin-1": "cp1252",
    "iso8859-1": "cp1252",
    "ascii": "cp1252",
    "iso8859-9": "cp1254",
    "iso8859-11": "cp874",
    "tis-620": "cp874",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "cp936": "gb18030",
    "euc_kr": "cp949",
    "ks_c_5601-1987": "cp949",
    "shift_jis": "cp932",
    "big5": "big5hkscs",
    "euc_jp": "euc_jis_2004",
}

# Labels the codec registry does not know, seen in real mail.
_ALIASES = {
    "ks_c_5601": "cp949",
    "ks_c_5601-1987": "cp949",
    "x-sjis": "cp932",
    "sjis": "cp932",
    "windows-31j": "cp932",
    "x-gbk": "gb18030",
    "gb_2312-80": "gb18030",
    "x-euc-jp": "euc_jis_2004",
    "iso-8859-8-i": "iso8859-8",
    "unicode-1-1-utf-7": "utf-7",
    "x-mac-roman": "mac-roman",
    "macintosh": "mac-roman",
    "utf8": "utf-8",
    "unknown-8bit": "",
    "x-unknown": "",
    "unknown": "",
    "default": "",
    "x-user-defined": "",
    "iso-2022-jp": "iso2022_jp",
    "csiso2022jp": "iso2022_jp",
}

# Single-byte legacy labels that are often put on UTF-8 text by misconfigured clients.
_SINGLE_BYTE = {"cp1252", "cp1254", "cp874", "cp1250", "cp1251", "iso8859-15", "iso8859-2"}


def codec_for(label: str | None) -> str:
    """The codec name to decode a part labelled ``label`` with; '' when the label says nothing."""
    if not label:
        return ""
    name = label.strip().strip("\"'").lower()
    # RFC 2231 allows a language suffix: "utf-8*en".
    name = name.split("*", 1)[0]
    if name in _ALIASES:
        return _ALIASES[name]
    try:
        canonical = codecs.lookup(name).name
    except (LookupError, ValueError):  # unknown, or raw bytes / a NUL in the label
        return "?" + name
    return _SUPERSETS.get(canonical, canonical)


def decode_bytes(data: bytes, label: str | None) -> tuple[str, str]:
    """Decode ``data`` labelled ``label``; returns (text, defect note or '')."""
    if not data:
        return "", ""
    codec = codec_for(label)
    if codec.startswith("?"):
        text = _guess(data)
        return text, f"unknown charset {codec[1:]!r}, decoded as {_guess_name(data)}"
    if not codec:
        return _guess(data), ""
    if codec == "iso2022_jp":
        return _decode_iso2022jp(data)
    if codec in _SINGLE_BYTE and _is_utf8_with_8bit(data):
        return data.decode("utf-8"), ""
    try:
        return data.decode(codec), ""
    except UnicodeDecodeError:
        pass
    if _is_utf8_with_8bit(data):
        return data.decode("utf-8"), f"labelled {label!r} but is UTF-8"
    return data.decode(codec, "replace"), f"invalid {label!r} bytes replaced"


def _is_utf8_with_8bit(data: bytes) -> bool:
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _guess(data: bytes) -> str:
    """Unlabelled or unknown: UTF-8 when it is valid, else windows-1252, never an error."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252", "replace")


def _guess_name(data: bytes) -> str:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return "windows-1252"
    return "UTF-8"


# --- ISO-2022-JP with Microsoft's extensions (CP50220/CP50221) ---------------------------

_ESC_SEQUENCE = re.compile(rb"\x1b(\$B|\$@|\(B|\(J|\(I|\$\(D|\$\(Q|\$\(O)")


def _decode_iso2022jp(data: bytes) -> tuple[str, str]:
    try:
        return data.decode("iso2022_jp"), ""
    except UnicodeDecodeError:
        pass
    # Microsoft's variant is Shift_JIS (cp932) written in JIS code points: convert the
    # double-byte runs to cp932 and decode that, which covers NEC row 13 (①, ㈱…) and
    # the NEC-selected IBM extensions the strict codec rejects.
    out = bytearray()
    mode = b"(B"
    pos = 0
    for match in _ESC_SEQUENCE.finditer(data):
        out += _jis_run_to_sjis(data[pos : match.start()], mode)
        mode = match.group(1)
        pos = match.end()
    out += _jis_run_to_sjis(data[pos:], mode)
    text = bytes(out).decode("cp932", "replace")
    return text, "" if "\ufffd" not in text else "invalid ISO-2022-JP bytes replaced"


def _jis_run_to_sjis(run: bytes, mode: bytes) -> bytes:
    if mode in (b"(B", b"(J"):
        return run
    if mode == b"(I":
        return bytes(b + 0x80 if 0x21 <= b <= 0x5F else b for b in run)
    out = bytearray()
    i = 0
    while i < len(run):
        j1 = run[i]
        if j1 in (0x0A, 0x0D, 0x20) or i + 1 >= len(run):
            out.append(j1)
            i += 1
            continue
        j2 = run[i + 1]
        s1 = ((j1 + 1) >> 1) + (0x70 if j1 <= 0x5E else 0xB0)
        if j1 & 1:
            s2 = j2 + (0x1F if j2 <= 0x5F else 0x20)
        else:
            s2 = j2 + 0x7E
        out += bytes((s1 & 0xFF, s2 & 0xFF))
        i += 2
    return bytes(out)


# --- RFC 2047 header words ---------------------------------------------------------------

_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([QqBb])\?([^?\s]*)\?=")
_FOLD = re.compile(r"\r?\n[ \t]")


def decode_header(value: str | None) -> str:
    """A header value as text: encoded words decoded, raw 8-bit bytes guessed, folds removed.

    ``value`` is what the stdlib's compat32 parser stores: a str in which raw
    8-bit header bytes are surrogate escapes.
    """
    if not value:
        return ""
    value = _FOLD.sub(" ", str(value)).replace("\r", "").replace("\n", "")
    if "=?" not in value:
        return _raw_text(value)
    pieces: list[str] = []
    pending: tuple[str, bytearray] | None = None
    pos = 0
    for match in _ENCODED_WORD.finditer(value):
        between = value[pos : match.start()]
        charset, kind, payload = match.groups()
        data = _decode_word(kind, payload)
        # Whitespace between two encoded words is not part of the text (RFC 2047 §6.2),
        # and one character may be split over two words: join their bytes first.
        if pending is not None and not between.strip():
            if pending[0].lower() == charset.lower():
                pending[1].extend(data)
                pos = match.end()
                continue
            pieces.append(decode_bytes(bytes(pending[1]), pending[0])[0])
            pending = None
        elif pending is not None:
            pieces.append(decode_bytes(bytes(pending[1]), pending[0])[0])
            pieces.append(_raw_text(between))
            pending = None
        else:
            pieces.append(_raw_text(between))
        pending = (charset, bytearray(data))
        pos = match.end()
    if pending is not None:
        pieces.append(decode_bytes(bytes(pending[1]), pending[0])[0])
    pieces.append(_raw_text(value[pos:]))
    return "".join(pieces)


def _decode_word(kind: str, payload: str) -> bytes:
    if kind in "Bb":
        try:
            cleaned = payload.encode("ascii", "ignore")
            return binascii.a2b_base64(cleaned + b"=" * (-len(cleaned) % 4))
        except binascii.Error:
            return payload.encode("ascii", "replace")
    raw = payload.replace("_", " ").encode("ascii", "surrogateescape")
    return binascii.a2b_qp(raw)


def _raw_text(text: str) -> str:
    """Header text outside encoded words: raw bytes arrive as surrogate escapes."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return _guess(text.encode("utf-8", "surrogateescape"))
    return text
