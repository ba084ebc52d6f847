"""Logins to the web desk: passwords, the login check with its rate limits, login links.

``mailgate agents password KEY`` and the desk's tests set a password through
``set_password``; the desk's ``/login`` asks ``log_in``. A password is kept as an
Argon2 hash (argon2-cffi's defaults). After ``ACCOUNT_LIMIT`` failed logins for one
account, or ``CLIENT_LIMIT`` from one client address, within ``WINDOW``, logins are
refused for ``LOCKED_FOR`` — even with the right password, so guessing on cannot
tell a right guess from a wrong one.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from mailgate.config import Agent, Config
from mailgate.context import Context
from mailgate.errors import UsageError
from mailgate.notices import send_login_link
from mailgate.store import utcnow, weblogins, write_transaction

WINDOW = dt.timedelta(minutes=15)
LOCKED_FOR = dt.timedelta(minutes=15)
ACCOUNT_LIMIT = 5
CLIENT_LIMIT = 20
LINK_VALID = dt.timedelta(minutes=15)
LINKS_PER_WINDOW = 5

_hasher = PasswordHasher()


def _unguessable_hash() -> str:
    """An argon2 hash in ``_hasher``'s parameters that no password matches (salt and hash
    all zero bytes): verified when the account is unknown, so that answer takes as long
    as a wrong password's. Written out rather than hashed at import, which cost every
    ``mailgate`` command (``mailgate ingest`` for each piped mail) a quarter second of CPU."""

    def zeros(length: int) -> str:
        return base64.b64encode(bytes(length)).decode().rstrip("=")

    parameters = f"m={_hasher.memory_cost},t={_hasher.time_cost},p={_hasher.parallelism}"
    return f"$argon2id$v=19${parameters}${zeros(_hasher.salt_len)}${zeros(_hasher.hash_len)}"


_DUMMY_HASH = _unguessable_hash()


def agent_named(config: Config, account: str) -> Agent | None:
    """The agent whose key, or one of whose addresses, ``account`` is."""
    account = account.strip()
    return config.agent(account) or config.agent_for(account)


def agent_by_key(config: Config, key: str) -> Agent:
    agent = config.agent(key)
    if agent is None:
        raise UsageError(f"there is no agent {key!r} in {config.path}")
    return agent


def set_password(config: Config, key: str, password: str) -> tuple[Agent, int]:
    """Set the desk password of agent ``key`` (Argon2 hash); one-line errors.

    A new password ends every session the agent has open (a password is changed when
    the old one may be known to someone else); returns the agent and how many ended.
    """
    agent = agent_by_key(config, key)
    if not password:
        raise UsageError("the password is empty; nothing changed")
    weblogins.set_password(agent.key, _hasher.hash(password))
    return agent, weblogins.end_sessions_of(agent.key)


def log_out_everywhere(config: Config, key: str) -> tuple[Agent, int]:
    """End every desk session of agent ``key`` (a lost laptop); how many there were."""
    agent = agent_by_key(config, key)
    return agent, weblogins.end_sessions_of(agent.key)


def password_matches(agent_key: str, password: str) -> bool:
    stored = weblogins.password(agent_key)
    try:
        _hasher.verify(stored.hash if stored else _DUMMY_HASH, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False
    if stored is None:
        return False
    if _hasher.check_needs_rehash(stored.hash):
        weblogins.set_password(agent_key, _hasher.hash(password))
    return True


@dataclass(frozen=True)
class Outcome:
    """What became of a login: ``agent`` when it worked, ``locked_until`` when refused."""

    agent: Agent | None = None
    locked_until: dt.datetime | None = None


def account_of(config: Config, account: str) -> str:
    """What the rate limit counts by: the agent's key, else the account as typed."""
    agent = agent_named(config, account)
    return agent.key if agent else account.strip().lower()[:320]


def locked_until(config: Config, account: str, client: str) -> dt.datetime | None:
    """Until when logins for ``account`` or from ``client`` are refused (None: they are not)."""
    now = utcnow()
    since = now - WINDOW - LOCKED_FOR
    by_account = weblogins.failures(account=account_of(config, account), since=since)
    ends = [
        _lock_end(by_account, ACCOUNT_LIMIT),
        _lock_end(weblogins.failures(client=client, since=since), CLIENT_LIMIT),
    ]
    until = max((end for end in ends if end is not None), default=None)
    return until if until is not None and until > now else None


def _lock_end(times: Sequence[dt.datetime], limit: int) -> dt.datetime | None:
    """The end of the latest lock: ``limit`` failures within ``WINDOW`` lock for ``LOCKED_FOR``."""
    end = None
    for i in range(len(times) - limit + 1):
        last = times[i + limit - 1]
        if last - times[i] <= WINDOW:
            end = last + LOCKED_FOR
    return end


def log_in(config: Config, account: str, password: str, client: str) -> Outcome:
    """Check a login by key or address and password, counting it for the rate limits."""
    until = locked_until(config, account, client)
    if until is not None:
        return Outcome(locked_until=until)  # not counted: a lock is not made longer by knocking
    agent = agent_named(config, account)
    ok = password_matches(agent.key if agent else "", password) and agent is not None
    weblogins.record_attempt(account_of(config, account), client, ok)
    return Outcome(agent=agent if ok else None)


# --- one-time login links -------------------------------------------------------------------


def _sign(secret: bytes, token: str) -> str:
    mac = hmac.new(secret, f"login-link:{token}".encode(), hashlib.sha256).digest()
    return f"{token}.{base64.urlsafe_b64encode(mac[:24]).decode().rstrip('=')}"


def _unsigned(secret: bytes, signed: str) -> str | None:
    token = signed.rpartition(".")[0]
    return token if token and hmac.compare_digest(_sign(secret, token), signed) else None


def request_link(ctx: Context, address: str, base_url: str) -> bool:
    """Mail a login link to ``address`` when it is an agent's; True when one was queued.

    At most ``LINKS_PER_WINDOW`` links per agent within ``WINDOW``: asking more often
    sends nothing (the answer to the asker is the same either way).
    """
    address = address.strip()
    agent = ctx.config.agent_for(address) if "@" in address else None
    if agent is None:
        return False
    now = utcnow()
    if weblogins.links_since(agent.key, now - WINDOW) >= LINKS_PER_WINDOW:
        return False
    token = secrets.token_urlsafe(32)
    to = next((e for e in agent.emails if e.lower() == address.lower()), address)
    url = f"{base_url.rstrip('/')}/login/link/{_sign(ctx.secret, token)}"
    with write_transaction():
        weblogins.create_link(weblogins.digest(token), agent.key, now + LINK_VALID)
        send_login_link(ctx, agent, to, url, int(LINK_VALID.total_seconds() // 60))
    return True


def link_state(ctx: Context, signed: str) -> str:
    """``usable``, ``used``, ``expired`` or ``unknown`` (a forged or mangled link)."""
    token = _unsigned(ctx.secret, signed)
    found = weblogins.link(weblogins.digest(token)) if token else None
    if found is None or ctx.config.agent(found.agent_key) is None:
        return "unknown"
    if found.used_at is not None:
        return "used"
    return "expired" if found.expires_at <= utcnow() else "usable"


def use_link(ctx: Context, signed: str) -> Agent | None:
    """The agent the link logs in, once (None: used, expired, unknown)."""
    token = _unsigned(ctx.secret, signed)
    key = weblogins.use_link(weblogins.digest(token), utcnow()) if token else None
    return ctx.config.agent(key) if key else None
