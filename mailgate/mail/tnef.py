"""Outlook's ``winmail.dat`` (TNEF): the files inside it, by their long names.

Pure: bytes in, (name, bytes) pairs out; imports only the standard library and
tnefparse (a small, dependency-free reader of the format). Never raises.

tnefparse slices the remaining input once per TNEF object, so its cost grows
with objects x size; the object count is checked first (linear), and a file
with more objects than any real winmail.dat has is kept only as the original.
"""

from __future__ import annotations

import logging
import struct

_SIGNATURE = b"\x78\x9f\x3e\x22"
# A real winmail.dat has about 15 message objects and 6 per attached file.
MAX_OBJECTS = 600
MAX_FILES = 100


def is_tnef(content_type: str, filename: str, data: bytes) -> bool:
    named = filename.lower() in ("winmail.dat", "win.dat")
    typed = content_type in ("application/ms-tnef", "application/vnd.ms-tnef")
    return (named or typed) and data[:4] == _SIGNATURE


def _object_count(data: bytes) -> int:
    offset, count = 6, 0
    while offset + 12 < len(data) and count <= MAX_OBJECTS:
        (length,) = struct.unpack_from("<I", data, offset + 5)
        offset += length + 11
        count += 1
    return count


def files(data: bytes) -> tuple[list[tuple[str, bytes]], str]:
    """The attached files of a TNEF blob, and what went wrong reading it ('' if nothing)."""
    if _object_count(data) > MAX_OBJECTS:
        return [], f"more than {MAX_OBJECTS} TNEF objects; kept only as winmail.dat"
    logging.getLogger("tnefparse").setLevel(logging.ERROR)
    try:
        from tnefparse import TNEF

        parsed = TNEF(data, do_checksum=False)
    except Exception as exc:  # noqa: BLE001 - a broken winmail.dat is kept as it is
        return [], f"unreadable ({type(exc).__name__}); kept only as winmail.dat"
    found: list[tuple[str, bytes]] = []
    for index, attachment in enumerate(parsed.attachments[:MAX_FILES], 1):
        try:
            name = _text(attachment.long_filename()) or _text(attachment.name)
            content = attachment.data
        except Exception:  # noqa: BLE001, S112 - one bad attachment must not cost the others
            continue
        if isinstance(content, bytes | bytearray):
            found.append((name or f"winmail-{index}.bin", bytes(content)))
    return found, ""


def _text(value: object) -> str:
    if isinstance(value, bytes | bytearray):
        for codec in ("utf-8", "cp1252"):
            try:
                return bytes(value).decode(codec).strip("\x00").strip()
            except UnicodeDecodeError:
                continue
    return str(value or "").strip("\x00").strip()
