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
import unicodedata

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
    """The codec name to decode a part labelled ``label`` with; '' when the label says nothing.

    A label that names no text codec (garbage bytes, NUL, "base64", "rot13") comes
    back as ``"?label"``; this never raises.
    """
    if not label:
        return ""
    name = str(label).strip().strip("\"'").lower()
    # RFC 2231 allows a language suffix: "utf-8*en".
    name = name.split("*", 1)[0]
    if name in _ALIASES:
        return _ALIASES[name]
    if not (name.isascii() and name.isprintable()) or len(name) > 60:
        return "?" + name.encode("ascii", "backslashreplace").decode("ascii")[:60]
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, UnicodeError):
        return "?" + name
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_TEXT:
        return "?" + name
    return _SUPERSETS.get(info.name, info.name)


# Text codecs in name only: they turn any bytes into text without telling anything.
_NOT_TEXT = frozenset({"unicode-escape", "raw-unicode-escape", "undefined", "idna", "punycode"})


def decode_bytes(data: bytes, label: str | None) -> tuple[str, str]:
    """Decode ``data`` labelled ``label``; returns (text, defect note or ''). Never raises."""
    if not data:
        return "", ""
    codec = codec_for(label)
    if codec.startswith("?"):
        text, guessed = guess_text(data)
        return text, f"unknown charset {codec[1:]!r}, decoded as {guessed}"
    if not codec:
        return guess_text(data)[0], ""
    if codec == "iso2022_jp":
        return _decode_iso2022jp(data)
    if codec in _SINGLE_BYTE and _is_utf8_with_8bit(data):
        return data.decode("utf-8"), ""
    try:
        return data.decode(codec), ""
    except (UnicodeError, LookupError, ValueError, TypeError):
        pass
    if _is_utf8_with_8bit(data):
        return data.decode("utf-8"), f"labelled {label!r} but is UTF-8"
    try:
        return data.decode(codec, "replace"), f"invalid {label!r} bytes replaced"
    except (UnicodeError, LookupError, ValueError, TypeError):
        return data.decode("utf-8", "replace"), f"invalid {label!r} bytes replaced"


def _is_utf8_with_8bit(data: bytes) -> bool:
    if data.isascii():
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def guess_text(data: bytes, hint: str | None = None) -> tuple[str, str]:
    """Unlabelled bytes as text: (text, the charset used). Never raises.

    Valid UTF-8 first (8-bit text that happens to be valid UTF-8 is UTF-8 in
    practice, whatever the part says), then the hint (a part's or the mail's
    charset) when the bytes are valid in it, then the legacy charset the bytes
    suggest.
    """
    try:
        return data.decode("utf-8"), "UTF-8"
    except UnicodeDecodeError:
        pass
    if hint:
        codec = codec_for(hint)
        if codec and not codec.startswith("?") and codec not in ("iso2022_jp", "utf-8"):
            try:
                return data.decode(codec), codec
            except (UnicodeError, LookupError, ValueError, TypeError):
                pass
    codec = legacy_codec(data)
    return data.decode(codec, "replace"), codec


_EIGHT_BIT_RUN = re.compile(rb"[\x80-\xff]+")


def legacy_codec(data: bytes) -> str:
    """The legacy charset non-UTF-8 bytes most likely are: cp1252, koi8_r, cp932 or gb18030.

    Each candidate that decodes the bytes without control, private-use or
    unassigned characters gets a score: Latin text has its 8-bit letters alone or in
    pairs between ASCII ones ("Gr\xfc\xdfe"); Cyrillic has runs of Cyrillic letters;
    Japanese has kana; Chinese only ideographs. The best score wins, cp1252 on a tie.
    """
    sample = data[:65536]
    found = list(_EIGHT_BIT_RUN.finditer(sample))
    if not found:
        return "cp1252"
    longest = max(m.end() - m.start() for m in found)
    # Shift_JIS kanji mostly have lead bytes below 0xA1, GB2312 hanzi never.
    sjis_leads = sum(0x81 <= sample[m.start()] <= 0xA0 for m in found) * 2 > len(found)
    best, best_score = "cp1252", 0.0
    for codec in ("cp1252", "koi8_r", "cp932", "gb18030"):
        text = _strict(sample, codec)
        if text is None:
            continue
        wide = [c for c in text if ord(c) > 0x7F]
        if any(unicodedata.category(c)[0] == "C" for c in wide):
            continue
        score = _score(codec, wide, longest)
        if codec == "gb18030" and sjis_leads:
            score /= 2
        if score > best_score:
            best, best_score = codec, score
    return best


def _score(codec: str, wide: list[str], longest: int) -> float:
    if codec == "cp1252":
        letters = sum(c.isalpha() for c in wide) / len(wide)
        return (3.0 if longest <= 2 else 1.0) * letters
    if codec == "koi8_r":
        if not all("\u0400" <= c <= "\u04ff" for c in wide):
            return 0.0
        return 2.2 if longest >= 3 else 0.5
    if codec == "cp932" and any("\u3040" <= c <= "\u30ff" for c in wide):
        return 2.5
    cjk = all(
        "\u4e00" <= c <= "\u9fff" or "\u3000" <= c <= "\u303f" or "\uff00" <= c <= "\uffef"
        for c in wide
    )
    if not cjk:
        return 0.0
    return 2.0 if codec == "gb18030" else 1.5


def _strict(data: bytes, codec: str) -> str | None:
    for cut in (data, data[:-1]):
        # A sample cut inside a double-byte character is still that charset.
        try:
            return cut.decode(codec)
        except UnicodeDecodeError:
            continue
    return None


def _guess(data: bytes) -> str:
    return guess_text(data)[0]


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

# Broken mailers put spaces and tabs inside encoded words ("=?utf-8?Q?Grüße aus Berlin?=");
# a payload can never hold "?", so the match still ends at the first "?=".
_ENCODED_WORD = re.compile(r"=\?([^?\s]{1,80})\?([QqBb])\?([^?]*)\?=")
_FOLD = re.compile(r"\r?\n[ \t]")


def decode_header(value: str | None, hint: str | None = None) -> str:
    """A header value as text: encoded words decoded, raw 8-bit bytes guessed, folds removed.

    ``value`` is what the stdlib's compat32 parser stores: a str in which raw
    8-bit header bytes are surrogate escapes. Raw 8-bit text is read in ``hint``
    (the part's or the mail's charset) when it fits, else as UTF-8, else in the
    legacy charset the bytes suggest. An encoded word whose charset names no text
    codec is read as UTF-8 with replacement characters. Never raises.
    """
    if not value:
        return ""
    try:
        return _decode_header(str(value), hint)
    except Exception:  # noqa: BLE001 - the promise is "never raises", whatever the input
        return _to_bytes(str(value)).decode("utf-8", "replace")


def _decode_header(value: str, hint: str | None) -> str:
    value = _FOLD.sub(" ", value).replace("\r", "").replace("\n", "")
    if "=?" not in value:
        return raw_text(value, hint)
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
            pieces.append(_word_text(pending))
            pending = None
        elif pending is not None:
            pieces.append(_word_text(pending))
            pieces.append(raw_text(between, hint))
            pending = None
        else:
            pieces.append(raw_text(between, hint))
        pending = (charset, bytearray(data))
        pos = match.end()
    if pending is not None:
        pieces.append(_word_text(pending))
    pieces.append(raw_text(value[pos:], hint))
    return "".join(pieces)


def invalid_word_charsets(value: str) -> list[str]:
    """The charsets of encoded words in ``value`` that name no text codec (for repairs)."""
    bad = []
    for match in _ENCODED_WORD.finditer(str(value)[:20_000]):
        if codec_for(match.group(1)).startswith("?"):
            bad.append(ascii(match.group(1))[1:-1][:40])
    return bad


def _word_text(word: tuple[str, bytearray]) -> str:
    charset, data = word
    if codec_for(charset).startswith("?"):
        return bytes(data).decode("utf-8", "replace")
    return decode_bytes(bytes(data), charset)[0]


def _decode_word(kind: str, payload: str) -> bytes:
    if kind in "Bb":
        cleaned = payload.encode("ascii", "ignore").translate(None, b" \t")
        try:
            return binascii.a2b_base64(cleaned + b"=" * (-len(cleaned) % 4))
        except binascii.Error:
            return cleaned
    # Raw 8-bit bytes inside a Q word (a forwarded message's header written by a
    # broken client) stay the bytes they were.
    raw = _to_bytes(payload.replace("_", " ").replace("\t", " "))
    return binascii.a2b_qp(raw)


def _to_bytes(text: str) -> bytes:
    """Text back to the bytes it came from: surrogate escapes are raw bytes; lone
    surrogates of any other kind (not from a decoder) become U+FFFD."""
    try:
        return text.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        cleaned = "".join(
            "\ufffd" if "\ud800" <= c <= "\udfff" and not "\udc80" <= c <= "\udcff" else c
            for c in text
        )
        return cleaned.encode("utf-8", "surrogateescape")


def raw_text(text: str, hint: str | None = None) -> str:
    """Header text outside encoded words: raw bytes arrive as surrogate escapes."""
    if text.isascii():
        return text
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return guess_text(_to_bytes(text), hint)[0]
    return text
