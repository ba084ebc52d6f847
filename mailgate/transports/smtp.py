"""The SMTP/LMTP listener: accept mail for our addresses only, answer 250 once it is stored.

An aiosmtpd handler in the event loop of ``mailgate serve``. Decisions:

* MAIL: a reverse-path with an empty local part (``<""@host>``) is 553, like
  ``<@host>``: no one can be answered there. The null sender ``<>`` (bounces)
  is accepted.
* RCPT: only our mailbox addresses and their plus-addresses (550 otherwise):
  mailgate is never an open relay.
* DATA: the mail goes to ``ingest()`` in the database thread (one slow mail
  never blocks other sessions); 250 only after that transaction committed,
  451 when it could not be stored (the sending MTA keeps the mail and retries),
  552 above the size limit (announced as EHLO SIZE).
* LMTP (for Postfix/Dovecot): the same handler, one status line per recipient.
* Lines longer than SMTP's 1,000 octets are accepted: real senders produce them
  and refusing them loses mail.

Imports the envelope, errors and logs only; never intake or the database.
"""

from __future__ import annotations

import asyncio
import grp
import logging
import os
import re
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiosmtpd.lmtp import LMTP
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword

from mailgate.envelope import Envelope, Outcome
from mailgate.errors import TemporaryFailure
from mailgate.logs import event, redact
from mailgate.transports.smtpdata import ChunkedData

log = logging.getLogger("mailgate.smtp")

IngestCall = Callable[[bytes, Envelope], Awaitable[Outcome]]


@dataclass
class ListenerOptions:
    host: str = "127.0.0.1"
    port: int = 2525
    socket_path: str = ""
    socket_mode: int | None = None  # permission bits and group of the socket (Postfix
    socket_group: str = ""  # connects as its own user: "0660" and group "postfix")
    lmtp: bool = False
    hostname: str = "mailgate"
    max_message_size: int = 40 * 1024 * 1024
    max_connections: int = 100
    tls: ssl.SSLContext | None = None
    require_tls: bool = False
    # Agents may submit through the listener with AUTH over TLS: login → agent key.
    check_login: Callable[[str, str], str | None] | None = None
    # A mail over 1 MiB is written here during DATA and handed over as a path
    # (``Envelope.spool``); '' keeps every mail in memory.
    spool_dir: str = ""


class Counter:
    """Open sessions across all protocol instances of one listener."""

    def __init__(self) -> None:
        self.open = 0
        self.in_flight = 0
        self.sessions: set[Any] = set()

    def answered(self) -> bool:
        """Every answer written to its socket (no session has output waiting)."""
        for session in self.sessions:
            transport = getattr(session, "transport", None)
            if transport is not None and transport.get_write_buffer_size():
                return False
        return True


class Handler:
    def __init__(
        self,
        ingest: IngestCall,
        accepts: Callable[[str], bool],
        counter: Counter,
        *,
        lmtp: bool = False,
    ) -> None:
        self._ingest = ingest
        self._accepts = accepts
        self._counter = counter
        self._lmtp = lmtp

    def __dir__(self) -> list[str]:
        """The hooks only: aiosmtpd looks them up (and AUTH methods, we have none) with
        ``dir()`` and ``inspect.getmembers()`` for every connection."""
        return _protocol_names(type(self), ("handle_",))

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, mail_options: list[str]
    ) -> str:
        if _empty_local_part(address):
            event(log, "smtp.rejected", logging.INFO, sender=redact(address), peer=_peer(session))
            return "553 5.1.7 The sender address has an empty local part"
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        if not self._accepts(address):
            event(
                log, "smtp.rejected", logging.INFO, recipient=redact(address), peer=_peer(session)
            )
            return "550 5.1.1 No such mailbox here; this server is not a relay"
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        raw = envelope.original_content or b""
        spooled = getattr(envelope, "spool_path", "")  # set by smtpdata for a big mail
        login = getattr(session, "auth_data", None)
        agent = login if isinstance(login, str) else ""
        mail = Envelope(
            mail_from=envelope.mail_from or None,
            rcpt_tos=tuple(envelope.rcpt_tos),
            authenticated_as=agent,
            # Straight from the Internet nobody has checked (or removed) the
            # Authentication-Results a sender wrote; behind an MTA (LMTP) somebody has.
            via_mta=self._lmtp,
            spool=spooled,
        )
        self._counter.in_flight += 1
        try:
            outcome = await self._ingest(raw, mail)
        except TemporaryFailure as exc:
            event(log, "smtp.deferred", logging.WARNING, peer=_peer(session), error=str(exc))
            return self._answer(
                "451 4.3.0 Could not store the mail now; please try again later", envelope
            )
        except Exception:  # an unexpected error must defer, never drop, the mail
            log.exception("ingest failed", extra={"mailgate_fields": {"peer": _peer(session)}})
            return self._answer("451 4.3.0 Internal error; please try again later", envelope)
        finally:
            self._counter.in_flight -= 1
        ticket = f" ticket {outcome.tag}" if outcome.tag else ""
        return self._answer(f"250 2.0.0 OK {outcome.action}{ticket}", envelope)

    def _answer(self, status: str, envelope: Any) -> str:
        # LMTP answers DATA once per accepted recipient.
        if self._lmtp:
            return "\r\n".join(status for _ in envelope.rcpt_tos)
        return status


def _empty_local_part(address: str) -> bool:
    """``""@host`` or ``" "@host``; the null sender (no ``@`` at all) is not one."""
    local, at, _domain = address.rpartition("@")
    return bool(at) and not local.strip('"').strip()


def _peer(session: Any) -> str:
    peer = getattr(session, "peer", None)
    if isinstance(peer, tuple) and peer:
        return f"{peer[0]}:{peer[1]}" if len(peer) > 1 else str(peer[0])
    return str(peer or "")


_names: dict[type, list[str]] = {}

# A path as nearly every MTA writes it: ``<dot-atom@domain>``, then nothing or spaces
# and the parameters. Anything else — the null sender, quoted local parts, address
# literals, comments, UTF-8 — goes to aiosmtpd's own parser.
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_PLAIN_PATH = re.compile(
    rf"<({_ATEXT}(?:\.{_ATEXT})*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*)>"
    r"(?:\Z|[ \t]+(?![ \t(])(.*))",
    re.DOTALL,
)


def _protocol_names(cls: type, prefixes: tuple[str, ...] = ("smtp_", "auth_")) -> list[str]:
    found = _names.get(cls)
    if found is None:
        found = _names[cls] = sorted(n for n in dir(cls) if n.startswith(prefixes))
    return found


class _SessionLimit:
    """Mixed into aiosmtpd's protocol classes: a connection limit and long lines."""

    counter: Counter
    max_connections: int
    _counted = False
    transport: asyncio.BaseTransport | None
    session: Any
    enable_SMTPUTF8: bool
    _writer: Any

    def __init__(
        self,
        handler: Handler,
        counter: Counter,
        max_connections: int,
        spool_dir: str = "",
        **kwargs: Any,
    ) -> None:
        self.counter = counter
        self.max_connections = max_connections
        self.spool_dir = spool_dir
        self._continued: list[bytes] = []  # lines of a reply not yet written (push)
        # A line may be as long as the mail may be: refusing it would bounce the mail.
        self.line_length_limit = max(int(kwargs.get("data_size_limit") or 0), 1 << 16)
        super().__init__(handler, **kwargs)  # type: ignore[call-arg]

    def __dir__(self) -> list[str]:
        """Only the command and AUTH methods: aiosmtpd's ``__init__`` looks them up, for
        every connection, with ``dir()`` and ``inspect.getmembers()`` of the whole
        protocol object — about a fifth of serve's CPU for a mail (cProfile, thread
        time), for names that are the same for every session of a class."""
        return _protocol_names(type(self))

    def _getaddr(self, arg: str) -> tuple[str | None, str | None]:
        """aiosmtpd's ``_getaddr`` (MAIL FROM, RCPT TO) without its parser for the plain
        ``<local@domain>``: ``email``'s header parser built a token tree and, in aiosmtpd,
        a ``typing.Protocol`` class for every call — about a tenth of serve's CPU for a
        mail (cProfile). Same results (``tests/test_listener.py`` compares them)."""
        plain = _PLAIN_PATH.match(arg)
        if plain is None:
            return super()._getaddr(arg)  # type: ignore[misc,no-any-return]
        address = plain.group(1)
        limit = getattr(self, "local_part_limit", 0)
        if limit and len(address.rpartition("@")[0]) > limit:
            return None, None
        return address, plain.group(2) or ""

    async def push(self, status: str | bytes) -> None:
        """aiosmtpd's ``push``, but the lines of a multi-line reply (EHLO's five) leave
        in one write with its last line instead of one system call each."""
        response = (
            status.encode("utf-8" if self.enable_SMTPUTF8 else "ascii")
            if isinstance(status, str)
            else status
        )
        if response[3:4] == b"-" and b"\n" not in response:
            self._continued.append(response + b"\r\n")
            return
        if self._continued:
            response = b"".join(self._continued) + response
            self._continued.clear()
        self._writer.write(response + b"\r\n")
        await self._writer.drain()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if self.transport is None:  # not the STARTTLS upgrade of an existing session
            if self.counter.open >= self.max_connections:
                transport.write(b"421 4.7.0 Too many connections, try again later\r\n")  # type: ignore[attr-defined]
                transport.close()
                return
            self.counter.open += 1
            self.counter.sessions.add(self)
            self._counted = True
        super().connection_made(transport)  # type: ignore[misc]

    def connection_lost(self, error: Exception | None) -> None:
        if self._counted:
            self.counter.open -= 1
            self.counter.sessions.discard(self)
            self._counted = False
        if self.session is not None:
            super().connection_lost(error)  # type: ignore[misc]


class MailgateSMTP(_SessionLimit, ChunkedData, SMTP):
    pass


class MailgateLMTP(_SessionLimit, ChunkedData, LMTP):
    pass


def _authenticator(check: Callable[[str, str], str | None]) -> Callable[..., AuthResult]:
    def authenticate(
        server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        login = auth_data.login.decode("utf-8", "replace")
        password = auth_data.password.decode("utf-8", "replace")
        agent = check(login, password)
        if agent is None:
            event(
                log, "smtp.auth_failed", logging.WARNING, login=redact(login), peer=_peer(session)
            )
            return AuthResult(success=False, handled=False)
        return AuthResult(success=True, auth_data=agent)

    return authenticate


async def start(
    options: ListenerOptions, ingest: IngestCall, accepts: Callable[[str], bool]
) -> tuple[asyncio.AbstractServer, Counter]:
    """Start listening inside the running loop; returns the server and its session counter."""
    loop = asyncio.get_running_loop()
    counter = Counter()
    handler = Handler(ingest, accepts, counter, lmtp=options.lmtp)
    protocol_class = MailgateLMTP if options.lmtp else MailgateSMTP
    kwargs: dict[str, Any] = {
        "data_size_limit": options.max_message_size,
        "enable_SMTPUTF8": True,
        "decode_data": False,
        "hostname": options.hostname,
        "ident": "mailgate",
        "timeout": 300,
        "loop": loop,
    }
    if options.tls is not None:
        kwargs["tls_context"] = options.tls
        kwargs["require_starttls"] = options.require_tls
    if options.check_login is not None:
        kwargs["authenticator"] = _authenticator(options.check_login)
        kwargs["auth_require_tls"] = True

    def factory() -> SMTP:
        return protocol_class(
            handler, counter, options.max_connections, options.spool_dir, **kwargs
        )

    server: asyncio.AbstractServer
    if options.socket_path:
        server = await loop.create_unix_server(factory, options.socket_path)
        try:
            _grant_access(options)
        except SocketAccessError:
            server.close()
            raise
    else:
        server = await loop.create_server(factory, options.host, options.port, reuse_address=True)
    return server, counter


class SocketAccessError(Exception):
    """The socket's group or mode could not be set; ``key`` names the setting."""

    def __init__(self, key: str, text: str) -> None:
        super().__init__(text)
        self.key = key


def _grant_access(options: ListenerOptions) -> None:
    path, group = options.socket_path, options.socket_group
    directory = os.path.dirname(path) or "."
    if group:
        try:
            # A non-root owner may choose only its own groups — or keep the group the
            # socket got from a set-group-ID directory (the README's recipe).
            os.chown(path, -1, grp.getgrnam(group).gr_gid)
        except (OSError, KeyError) as exc:
            raise SocketAccessError(
                "socket_group",
                f"cannot give {path} to group {group}: {getattr(exc, 'strerror', exc)}; "
                f"make mailgate's user a member of {group}, or the directory set-group-ID "
                f"{group} (chgrp {group} {directory} && chmod g+s {directory})",
            ) from None
    if options.socket_mode is not None:
        try:
            os.chmod(path, options.socket_mode)
        except OSError as exc:
            raise SocketAccessError("socket_mode", f"{path}: {exc.strerror}") from None


def tls_context(cert_file: str, key_file: str) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    return context
