"""The DATA command of the listener: a big mail goes straight to a file, never whole in memory.

aiosmtpd keeps DATA as one ``bytearray`` per line and joins them at the end: a 34 MiB
mail of 76-character base64 lines costs about 5x its size in the serve process
(``bench/attachments.py``). This is aiosmtpd 1.4's ``smtp_DATA`` with only the storage
changed: lines are un-dot-stuffed as they come and appended to a chunk of 1 MiB. A mail
that fits one chunk stays in memory (``envelope.original_content``); a bigger one is
written chunk by chunk into a spool file in ``spool_dir`` and handed over as its path
(``envelope.spool_path``, ``original_content`` empty) — the ingest worker reads that
file, serve never holds the mail. The file is removed once the handler answered (or
the DATA failed). The replies (354, 500 line too long, 552 too much data, the
handler's answer) are aiosmtpd's, word for word; a spool file that cannot be written
is 451 (the sender retries).

Imports asyncio, the standard library and aiosmtpd only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from typing import Any, BinaryIO

from aiosmtpd.smtp import MISSING, _DataState, syntax

log = logging.getLogger("mailgate.smtp")
CHUNK = 1 << 20
# What one read takes from the socket's buffer at most.
READ = 1 << 16


def _too_long(lines: bytes, partial: bytearray, most: int) -> bool:
    """Whether a complete line of ``lines``, or the line still coming, is over ``most``."""
    if len(partial) > most:
        return True
    return len(lines) > most and max(map(len, lines.split(b"\r\n"))) + 2 > most


class _Spool:
    """The chunks of one mail: in memory until the first full chunk, then in a file."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.chunks: list[bytes] = []
        self.path = ""
        self.file: BinaryIO | None = None
        self.error = ""

    def add(self, chunk: bytearray) -> None:
        if not self.directory:
            self.chunks.append(bytes(chunk))
            return
        if self.error:
            return
        try:
            if self.file is None:
                self.path = os.path.join(self.directory, f".spool-{os.getpid()}-{uuid.uuid4().hex}")
                self.file = open(self.path, "xb", buffering=0)  # noqa: SIM115 - closed in finish/discard
            self.file.write(chunk)
        except OSError as exc:
            self.error = f"{self.directory}: {exc.strerror or exc}"
            self.discard()

    def finish(self, last: bytearray) -> bytes:
        """The whole mail when it stayed in memory, else b"" (it is in ``path``)."""
        if self.file is None and not self.error:
            self.chunks.append(bytes(last))
            whole = b"".join(self.chunks)
            self.chunks = []
            return whole
        self.add(last)
        if self.file is not None:
            self.file.close()
            self.file = None
        return b""

    def restart(self) -> None:
        """Throw away what was kept (the mail will be refused)."""
        self.chunks = []
        self.discard()

    def discard(self) -> None:
        if self.file is not None:
            self.file.close()
            self.file = None
        if self.path:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
            self.path = ""


class ChunkedData:
    """Mixed into aiosmtpd's protocol classes (before them): the DATA command."""

    _reader: Any
    _writer: Any
    _handle_hooks: Any
    transport: Any
    envelope: Any
    data_size_limit: int | None
    line_length_limit: int
    spool_dir: str = ""

    @syntax("DATA")
    async def smtp_DATA(self, arg: str) -> None:
        server: Any = self
        if await server.check_helo_needed():
            return
        if await server.check_auth_needed("DATA"):
            return
        assert self.envelope is not None
        if not self.envelope.rcpt_tos:
            await server.push("503 Error: need RCPT command")
            return
        if arg:
            await server.push("501 Syntax: DATA")
            return
        await server.push("354 End data with <CR><LF>.<CR><LF>")
        spool = _Spool(self.spool_dir)
        try:
            await self._receive(server, spool)
        finally:
            spool.discard()

    async def _receive(self, server: Any, spool: _Spool) -> None:
        """Read the mail up to its ending line, a block at a time: whatever the socket
        gave, cut at the last complete line, un-dot-stuffed with one ``replace``
        (aiosmtpd awaits every line; about 300 a mail). What a pipelining client sent
        after the ending goes back to the reader for the next command."""
        reader = self._reader
        chunk = bytearray()
        num_bytes = 0
        limit = self.data_size_limit
        state = _DataState.NOMINAL
        buf = bytearray()  # from the start of a line: what is not yet taken
        while self.transport is not None:
            try:
                data = await reader.read(READ)
            except asyncio.CancelledError:
                log.info("Connection lost during DATA")
                self._writer.close()
                raise
            if not data:
                return  # the client went away: nothing is answered
            scanned = max(len(buf) - 4, 0)
            buf += data
            ended = True
            if buf.startswith(b".\r\n"):
                end, rest = 0, 3
            elif (found := buf.find(b"\r\n.\r\n", scanned)) >= 0:
                end, rest = found + 2, found + 5
            else:
                ended = False
                last = buf.rfind(b"\r\n", scanned)
                end = rest = last + 2 if last >= 0 else 0
            lines = bytes(memoryview(buf)[:end])
            if ended:
                if rest < len(buf):
                    reader._buffer[:0] = buf[rest:]  # the client's next command
                buf.clear()
            else:
                del buf[:rest]
            num_bytes += len(lines)
            if state == _DataState.NOMINAL and limit and num_bytes + len(buf) > limit:
                state = _DataState.TOO_MUCH
                spool.restart()
                chunk = bytearray()
            if state == _DataState.NOMINAL and _too_long(lines, buf, self.line_length_limit):
                state = _DataState.TOO_LONG
                spool.restart()
                chunk = bytearray()
            if state == _DataState.NOMINAL and lines:
                # RFC 5321 4.5.2: a leading dot was doubled by the client.
                if lines.startswith(b"."):
                    lines = lines[1:]
                chunk += lines.replace(b"\r\n.", b"\r\n")
                if len(chunk) >= CHUNK:
                    spool.add(chunk)
                    chunk = bytearray()
            elif state != _DataState.NOMINAL and len(buf) > READ:
                del buf[: len(buf) - 4]  # refused anyway: keep only what may end it
            if ended:
                break
        if state != _DataState.NOMINAL:
            if state == _DataState.TOO_LONG:
                await server.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            else:
                await server.push("552 Error: Too much mail data")
            server._set_post_data_state()
            return
        original_content = spool.finish(chunk)
        del chunk
        if spool.error:
            log.warning("cannot spool a mail: %s", spool.error)
            server._set_post_data_state()
            await server.push("451 4.3.0 Could not store the mail now; please try again later")
            return
        self.envelope.content = original_content
        self.envelope.original_content = original_content
        self.envelope.spool_path = spool.path
        status = MISSING
        if "DATA" in self._handle_hooks:
            status = await server._call_handler_hook("DATA")
        spool.discard()  # the handler has answered: the file has served
        server._set_post_data_state()
        await server.push("250 OK" if status is MISSING else status)
