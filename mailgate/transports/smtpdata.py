"""The DATA command of the listener, keeping the mail in chunks of 1 MiB instead of lines.

aiosmtpd keeps DATA as one ``bytearray`` per line and joins them at the end: a 34 MiB
mail of 76-character base64 lines costs about 5x its size in the serve process
(``bench/attachments.py``). This is aiosmtpd 1.4's ``smtp_DATA`` with only that
changed: lines are un-dot-stuffed as they come and appended to a chunk; a full chunk
becomes ``bytes``; the chunks are joined once. The replies (354, 500 line too long, 552
too much data, the handler's answer) are aiosmtpd's, word for word.

Imports asyncio and aiosmtpd only.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiosmtpd.smtp import MISSING, _DataState, syntax

log = logging.getLogger("mailgate.smtp")
CHUNK = 1 << 20


class ChunkedData:
    """Mixed into aiosmtpd's protocol classes (before them): the DATA command."""

    _reader: Any
    _writer: Any
    _handle_hooks: Any
    transport: Any
    envelope: Any
    data_size_limit: int | None
    line_length_limit: int

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
        chunks: list[bytes] = []
        chunk = bytearray()
        num_bytes = 0
        limit = self.data_size_limit
        fragments: list[bytes] = []
        state = _DataState.NOMINAL
        while self.transport is not None:
            try:
                line: bytes = await self._reader.readuntil(b"\r\n")
            except asyncio.CancelledError:
                log.info("Connection lost during DATA")
                self._writer.close()
                raise
            except asyncio.LimitOverrunError as exc:
                if state == _DataState.NOMINAL:
                    state = _DataState.TOO_LONG
                chunks, chunk = [], bytearray()
                line = await self._reader.read(exc.consumed)
            if not fragments and line == b".\r\n":
                break
            num_bytes += len(line)
            if state == _DataState.NOMINAL and limit and num_bytes > limit:
                state = _DataState.TOO_MUCH
                chunks, chunk = [], bytearray()
            fragments.append(line)
            if line.endswith(b"\r\n"):
                if state == _DataState.NOMINAL:
                    whole = b"".join(fragments) if len(fragments) > 1 else fragments[0]
                    if len(whole) > self.line_length_limit:
                        state = _DataState.TOO_LONG
                        chunks, chunk = [], bytearray()
                    else:
                        # RFC 5321 4.5.2: a leading dot was doubled by the client.
                        chunk += memoryview(whole)[1:] if whole.startswith(b".") else whole
                        if len(chunk) >= CHUNK:
                            chunks.append(bytes(chunk))
                            chunk = bytearray()
                fragments = []
        if state != _DataState.NOMINAL:
            if state == _DataState.TOO_LONG:
                await server.push("500 Line too long (see RFC5321 4.5.3.1.6)")
            else:
                await server.push("552 Error: Too much mail data")
            server._set_post_data_state()
            return
        chunks.append(bytes(chunk))
        del chunk
        original_content = b"".join(chunks)
        del chunks
        self.envelope.content = original_content
        self.envelope.original_content = original_content
        status = MISSING
        if "DATA" in self._handle_hooks:
            status = await server._call_handler_hook("DATA")
        server._set_post_data_state()
        await server.push("250 OK" if status is MISSING else status)
