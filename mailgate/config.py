"""Settings: frozen dataclasses loaded from one TOML file.

The config file is the admin's interface, so every error names the key and the
file in one line (``ConfigError``), never a traceback. The schema *is* the
dataclasses below: a key that is not a field is an unknown key, a value of the
wrong type is named with the type it should have. Secrets are never read from
the file itself: only the names of environment variables or files holding them.

Relative paths in the file are resolved against the working directory of the
process (``make run`` runs from the repository root).

Imports only the standard library and ``mailgate.errors``.
"""

from __future__ import annotations

import dataclasses
import grp
import os
import re
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from mailgate.errors import ConfigError

Status = Literal["new", "open", "pending", "resolved", "closed"]
Priority = Literal["low", "normal", "high", "emergency"]
PRIORITIES: tuple[str, ...] = get_args(Priority)
STATUSES: tuple[str, ...] = get_args(Status)
NOTICE_KINDS: tuple[str, ...] = (
    "acknowledgement",
    "assignment",
    "customer_reply",
    "agent_reply",
    "reopened",
    "resolution",
    "closed",
    "escalation",
)

CONFIG_ENV = "MAILGATE_CONFIG"
SECRET_ENV = "MAILGATE_SECRET_KEY"
DEFAULT_CONFIG_PATHS = (Path("config/mailgate.toml"), Path("/etc/mailgate/mailgate.toml"))

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True)
class Gateway:
    name: str = "mailgate helpdesk"
    domain: str = "mailgate.localhost"
    ticket_prefix: str = "MG"
    ticket_numbers: Literal["random", "sequential"] = "random"
    ticket_url: str = ""
    secret_key_file: str = "var/secret.key"
    max_message_size: int = 40 * 1024 * 1024
    # Longest one mail may be processed by the ingest worker (seconds) before it is
    # stopped and quarantined "took too long": one mail never stalls intake for everyone.
    max_processing_seconds: float = 30.0


@dataclass(frozen=True)
class Storage:
    blob_dir: str = "var/blobs"
    sync: Literal["normal", "full"] = "normal"


@dataclass(frozen=True)
class Database:
    url: str = "sqlite:///var/mailgate.db"


@dataclass(frozen=True)
class Lifecycle:
    reopen_window_days: int = 30
    unknown_sender: Literal["append", "new_ticket"] = "append"


@dataclass(frozen=True)
class Notices:
    acknowledgement: bool = True
    assignment: bool = True
    customer_reply: bool = True
    agent_reply: bool = True
    reopened: bool = True
    resolution: bool = True
    closed: bool = False
    escalation: bool = True
    # Who else hears of new tickets and customer replies when nobody is assigned.
    notify_team: bool = True

    def enabled(self, kind: str) -> bool:
        return bool(getattr(self, kind))


@dataclass(frozen=True)
class Mailbox:
    name: str
    address: str
    aliases: tuple[str, ...] = ()
    team: str = ""
    priority: Priority = "normal"
    plus_reply_to: bool = True
    templates: str = ""
    notices: Notices = field(default_factory=Notices)

    @property
    def addresses(self) -> tuple[str, ...]:
        return (self.address.lower(), *(a.lower() for a in self.aliases))


@dataclass(frozen=True)
class Team:
    key: str
    name: str
    address: str = ""
    members: tuple[str, ...] = ()
    escalation: str = ""
    assignment: Literal["none", "round_robin", "least_open"] = "none"


@dataclass(frozen=True)
class Agent:
    key: str
    name: str
    emails: tuple[str, ...]
    role: Literal["agent", "admin"] = "agent"
    # For mail submitted through the listener with SMTP AUTH (over TLS): login is the key.
    smtp_password_env: str = ""
    smtp_password_file: str = ""


@dataclass(frozen=True)
class Route:
    """A routing rule: every condition given must match; first matching rule wins."""

    name: str
    mailbox: str = ""
    to: tuple[str, ...] = ()
    sender: tuple[str, ...] = ()
    subject: tuple[str, ...] = ()
    body: tuple[str, ...] = ()
    header: tuple[str, ...] = ()
    team: str = ""
    priority: Literal["", "low", "normal", "high", "emergency"] = ""
    category: str = ""
    tags: tuple[str, ...] = ()
    assignee: str = ""


@dataclass(frozen=True)
class Security:
    # authserv-ids of our own receiving servers: only their Authentication-Results count.
    trusted_authserv_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class AgentMail:
    # Keep the agent's signature in replies relayed to the customer (quotes are always cut).
    keep_signature: bool = True


@dataclass(frozen=True)
class SmtpRelay:
    host: str = "127.0.0.1"
    port: int = 25
    security: Literal["none", "starttls", "tls"] = "starttls"
    verify: bool = True
    username: str = ""
    password_env: str = ""
    password_file: str = ""
    timeout: int = 30


@dataclass(frozen=True)
class Limits:
    per_recipient: tuple[str, ...] = ("10/10m", "30/1h")
    per_ticket: tuple[str, ...] = ("20/1h",)
    overall: tuple[str, ...] = ("600/1h",)
    undeliverable_days: int = 7


@dataclass(frozen=True)
class Outbound:
    transport: Literal["maildir", "smtp"] = "maildir"
    maildir: str = "var/sent"
    smtp: SmtpRelay = field(default_factory=SmtpRelay)
    limits: Limits = field(default_factory=Limits)
    batch_size: int = 100
    max_attempts: int = 12


@dataclass(frozen=True)
class Templates:
    dir: str = ""


@dataclass(frozen=True)
class Listener:
    enabled: bool = True
    protocol: Literal["smtp", "lmtp"] = "smtp"
    host: str = "127.0.0.1"
    port: int = 2525
    socket: str = ""
    # Who may connect to the socket (Postfix must): permission bits as octal digits in a
    # string ("0660"; empty: as the umask makes it) and a group name ("postfix").
    socket_mode: str = ""
    socket_group: str = ""
    hostname: str = ""
    max_connections: int = 100
    tls_cert: str = ""
    tls_key: str = ""
    require_tls: bool = False


@dataclass(frozen=True)
class ImapAccount:
    name: str
    host: str
    user: str
    mailbox: str = ""
    port: int = 993
    security: Literal["tls", "starttls", "none"] = "tls"
    verify: bool = True
    auth: Literal["password", "xoauth2"] = "password"
    password_env: str = ""
    password_file: str = ""
    oauth2_token_command: str = ""
    oauth2_token_url: str = ""
    oauth2_client_id: str = ""
    oauth2_client_secret_env: str = ""
    oauth2_refresh_token_file: str = ""
    folder: str = "INBOX"
    after: Literal["move", "flag", "delete"] = "move"
    move_to: str = "Processed"
    idle: bool = True
    poll_seconds: int = 60
    batch_size: int = 50


@dataclass(frozen=True)
class Jobs:
    outbox_seconds: int = 5
    recover_seconds: int = 300


@dataclass(frozen=True)
class Config:
    path: Path
    mailboxes: tuple[Mailbox, ...]
    gateway: Gateway = field(default_factory=Gateway)
    storage: Storage = field(default_factory=Storage)
    database: Database = field(default_factory=Database)
    lifecycle: Lifecycle = field(default_factory=Lifecycle)
    teams: tuple[Team, ...] = ()
    agents: tuple[Agent, ...] = ()
    outbound: Outbound = field(default_factory=Outbound)
    templates: Templates = field(default_factory=Templates)
    listener: Listener = field(default_factory=Listener)
    imap: tuple[ImapAccount, ...] = ()
    jobs: Jobs = field(default_factory=Jobs)
    routes: tuple[Route, ...] = ()
    security: Security = field(default_factory=Security)
    agent_mail: AgentMail = field(default_factory=AgentMail)

    # --- lookups used all over the core -------------------------------------------------

    def mailbox(self, name: str) -> Mailbox:
        for box in self.mailboxes:
            if box.name == name:
                return box
        raise ConfigError(f"no mailbox named {name!r} in {self.path}")

    def mailbox_for(self, addresses: typing.Iterable[str]) -> Mailbox | None:
        """The first of our mailboxes among these addresses (plus-addresses included)."""
        for address in addresses:
            box = self._by_address.get(base_address(address))
            if box is not None:
                return box
        return None

    @property
    def mailbox_addresses(self) -> frozenset[str]:
        """The addresses of our mailboxes (and aliases): mail to them comes back to us."""
        return frozenset(self._by_address)

    @property
    def own_addresses(self) -> frozenset[str]:
        """Every address mail may come *from* when we sent it: mailboxes and team addresses."""
        return self._own

    def agent_for(self, address: str) -> Agent | None:
        return self._agents_by_email.get(address.lower())

    def agent(self, key: str) -> Agent | None:
        for agent in self.agents:
            if agent.key == key:
                return agent
        return None

    def team(self, key: str) -> Team | None:
        for team in self.teams:
            if team.key == key:
                return team
        return None

    def __post_init__(self) -> None:
        by_address: dict[str, Mailbox] = {}
        for box in self.mailboxes:
            for address in box.addresses:
                by_address.setdefault(address, box)
        own = set(by_address)
        own.update(t.address.lower() for t in self.teams if t.address)
        agents = {e.lower(): a for a in self.agents for e in a.emails}
        object.__setattr__(self, "_by_address", by_address)
        object.__setattr__(self, "_own", frozenset(own))
        object.__setattr__(self, "_agents_by_email", agents)

    _by_address: dict[str, Mailbox] = field(init=False, repr=False, compare=False)
    _own: frozenset[str] = field(init=False, repr=False, compare=False)
    _agents_by_email: dict[str, Agent] = field(init=False, repr=False, compare=False)


def base_address(address: str) -> str:
    """``support+123@x`` → ``support@x``, lowercased: how mailbox addresses are compared."""
    local, at, domain = address.strip().lower().rpartition("@")
    if not at:
        return address.strip().lower()
    return f"{local.split('+', 1)[0]}@{domain}"


def parse_rate(text: str) -> tuple[int, int]:
    """``"10/10m"`` → (10 mails, 600 seconds)."""
    match = _RATE.match(text)
    if not match:
        raise ValueError(text)
    count, amount, unit = match.groups()
    return int(count), int(amount or 1) * _UNIT_SECONDS[unit]


# --- loading ----------------------------------------------------------------------------

# TOML spells lists of tables in the singular ([[mailbox]]); the dataclass field is plural.
_TABLE_ARRAYS = {
    "mailbox": "mailboxes",
    "team": "teams",
    "agent": "agents",
    "imap": "imap",
    "route": "routes",
}
_SECRET_KEYS = {"password", "secret", "secret_key", "token", "client_secret", "refresh_token"}


def find_config_path(explicit: str | None) -> Path:
    """``--config`` wins, then ``MAILGATE_CONFIG``, then the usual places."""
    if explicit:
        return Path(explicit)
    if os.environ.get(CONFIG_ENV):
        return Path(os.environ[CONFIG_ENV])
    for candidate in DEFAULT_CONFIG_PATHS:
        if candidate.is_file():
            return candidate
    raise ConfigError(
        "no config file: pass --config PATH or set MAILGATE_CONFIG "
        f"(looked for {', '.join(str(p) for p in DEFAULT_CONFIG_PATHS)})"
    )


def load(path: Path) -> Config:
    """Read and validate the config file; every problem is one ``ConfigError`` line."""
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None
    return from_dict(data, path)


def from_dict(data: dict[str, Any], path: Path) -> Config:
    renamed: dict[str, Any] = {}
    for key, value in data.items():
        renamed[_TABLE_ARRAYS.get(key, key)] = value
    if "mailboxes" not in renamed:
        raise ConfigError(f"[[mailbox]]: at least one mailbox is required (in {path})")
    renamed["path"] = path
    config: Config = _build(Config, renamed, "", path)
    _check_references(config, path)
    return config


def _build(cls: type[Any], data: Any, where: str, path: Path) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(f"{where or 'top level'}: must be a table (in {path})")
    hints = typing.get_type_hints(cls)
    known = {f.name: f for f in dataclasses.fields(cls) if f.init}
    values: dict[str, Any] = {}
    for key, value in data.items():
        public = {v: k for k, v in _TABLE_ARRAYS.items()}.get(key, key)
        name = f"{where}.{public}" if where else public
        if key not in known:
            if key in _SECRET_KEYS or key.endswith("password"):
                raise ConfigError(
                    f"{name}: secrets do not belong in the config file; name an environment "
                    f"variable or a file instead (e.g. {public}_env / {public}_file) (in {path})"
                )
            raise ConfigError(f"{name}: unknown key (in {path})")
        assert hints.get(key) is not None
        values[key] = _coerce(hints[key], value, str(name), path)
    for name, spec in known.items():
        if name not in values and _is_required(spec):
            key = {v: k for k, v in _TABLE_ARRAYS.items()}.get(name, name)
            raise ConfigError(f"{where + '.' if where else ''}{key}: missing (in {path})")
    try:
        return cls(**values)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc} (in {path})") from None


def _is_required(spec: dataclasses.Field[Any]) -> bool:
    return spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING


def _coerce(hint: Any, value: Any, name: str, path: Path) -> Any:
    origin = get_origin(hint)
    if hint is Path:
        return value
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices:
            raise ConfigError(
                f"{name}: must be one of {', '.join(map(repr, choices))}, not {value!r} (in {path})"
            )
        return value
    if origin is tuple:
        (item_hint, _ellipsis) = get_args(hint)
        if not isinstance(value, list):
            raise ConfigError(f"{name}: must be a list (in {path})")
        return tuple(_coerce(item_hint, v, f"{name}[{i}]", path) for i, v in enumerate(value))
    if origin in (types.UnionType, typing.Union):
        raise TypeError("unions are not used in the config schema")
    if dataclasses.is_dataclass(hint):
        return _build(typing.cast(type[Any], hint), value, name, path)
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    expected = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}[hint]
    # bool is an int in Python; TOML keeps them apart, and so do we.
    if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
        raise ConfigError(f"{name}: must be {expected}, not {value!r} (in {path})")
    return value


def _check_references(config: Config, path: Path) -> None:
    def fail(key: str, why: str) -> typing.NoReturn:
        raise ConfigError(f"{key}: {why} (in {path})")

    _check_database_url(config.database.url, path)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,15}", config.gateway.ticket_prefix):
        fail("gateway.ticket_prefix", "letters, digits and '-', starting with a letter, ≤16")
    if config.gateway.max_message_size < 1024:
        fail("gateway.max_message_size", "must be at least 1024 bytes")
    if not config.gateway.max_processing_seconds > 0:
        fail("gateway.max_processing_seconds", "must be more than 0")
    if config.lifecycle.reopen_window_days < 0:
        fail("lifecycle.reopen_window_days", "must not be negative")
    team_keys = {t.key for t in config.teams}
    agent_keys = {a.key for a in config.agents}
    seen_boxes: set[str] = set()
    seen_addresses: set[str] = set()
    for i, box in enumerate(config.mailboxes):
        where = f"mailbox[{i}]"
        if not box.name:
            fail(f"{where}.name", "must not be empty")
        if box.name in seen_boxes:
            fail(f"{where}.name", f"duplicate mailbox name {box.name!r}")
        seen_boxes.add(box.name)
        for j, address in enumerate(box.addresses):
            key = f"{where}.address" if j == 0 else f"{where}.aliases[{j - 1}]"
            if not _ADDRESS.match(address):
                fail(key, f"{address!r} is not a mail address")
            if "+" in address.partition("@")[0]:
                fail(key, "must not contain '+': plus-addresses are recognised automatically")
            if address in seen_addresses:
                fail(key, f"{address} is used by two mailboxes")
            seen_addresses.add(address)
        if box.team and box.team not in team_keys:
            fail(f"{where}.team", f"no [[team]] with key {box.team!r}")
    seen_emails: set[str] = set()
    for i, agent in enumerate(config.agents):
        if not agent.emails:
            fail(f"agent[{i}].emails", "at least one address is required")
        for j, email in enumerate(agent.emails):
            if not _ADDRESS.match(email):
                fail(f"agent[{i}].emails[{j}]", f"{email!r} is not a mail address")
            if email.lower() in seen_emails or email.lower() in seen_addresses:
                fail(f"agent[{i}].emails[{j}]", f"{email} is already used")
            seen_emails.add(email.lower())
    if len(agent_keys) != len(config.agents):
        fail("agent", "two agents share a key")
    if len(team_keys) != len(config.teams):
        fail("team", "two teams share a key")
    for i, team in enumerate(config.teams):
        if team.address and not _ADDRESS.match(team.address):
            fail(f"team[{i}].address", f"{team.address!r} is not a mail address")
        for j, member in enumerate(team.members):
            if member not in agent_keys:
                fail(f"team[{i}].members[{j}]", f"no [[agent]] with key {member!r}")
        if team.escalation and team.escalation not in agent_keys:
            fail(f"team[{i}].escalation", f"no [[agent]] with key {team.escalation!r}")
    limits = config.outbound.limits
    for key in ("per_recipient", "per_ticket", "overall"):
        for j, rate in enumerate(getattr(limits, key)):
            try:
                parse_rate(rate)
            except ValueError:
                fail(f"outbound.limits.{key}[{j}]", f"{rate!r} is not a rate like '10/10m'")
    smtp = config.outbound.smtp
    if smtp.username and not (smtp.password_env or smtp.password_file):
        fail("outbound.smtp.password_env", "a username needs password_env or password_file")
    listener = config.listener
    for i, agent in enumerate(config.agents):
        if (agent.smtp_password_env or agent.smtp_password_file) and not listener.tls_cert:
            fail(
                f"agent[{i}].smtp_password_env",
                "SMTP AUTH for agents needs STARTTLS: set listener.tls_cert and listener.tls_key",
            )
    if bool(listener.tls_cert) != bool(listener.tls_key):
        fail("listener.tls_key", "tls_cert and tls_key go together")
    if listener.require_tls and not listener.tls_cert:
        fail("listener.require_tls", "needs tls_cert and tls_key")
    if not (0 < listener.port < 65536):
        fail("listener.port", f"{listener.port} is not a port number")
    _check_socket_access(listener, fail)
    for i, route in enumerate(config.routes):
        where = f"route[{i}]"
        if route.mailbox and route.mailbox not in seen_boxes:
            fail(f"{where}.mailbox", f"no [[mailbox]] named {route.mailbox!r}")
        if route.team and route.team not in team_keys:
            fail(f"{where}.team", f"no [[team]] with key {route.team!r}")
        if route.assignee and route.assignee not in agent_keys:
            fail(f"{where}.assignee", f"no [[agent]] with key {route.assignee!r}")
        for j, header in enumerate(route.header):
            if ":" not in header:
                fail(f"{where}.header[{j}]", "write it as 'Header-Name: text'")
        if not any(
            (route.to, route.sender, route.subject, route.body, route.header, route.mailbox)
        ):
            fail(where, "a route needs at least one condition (to, sender, subject, body, header)")
        if not any((route.team, route.priority, route.category, route.tags, route.assignee)):
            fail(
                where,
                "a route needs at least one action (team, priority, category, tags, assignee)",
            )
    names: set[str] = set()
    for i, account in enumerate(config.imap):
        where = f"imap[{i}]"
        if account.name in names:
            fail(f"{where}.name", f"duplicate IMAP account name {account.name!r}")
        names.add(account.name)
        if account.mailbox and account.mailbox not in seen_boxes:
            fail(f"{where}.mailbox", f"no [[mailbox]] named {account.mailbox!r}")
        if account.auth == "password" and not (account.password_env or account.password_file):
            fail(f"{where}.password_env", "name an environment variable or a password_file")
        if account.auth == "xoauth2" and not (
            account.oauth2_token_command
            or (account.oauth2_token_url and account.oauth2_refresh_token_file)
        ):
            fail(
                f"{where}.oauth2_token_command",
                "xoauth2 needs a token command, or a token URL and a refresh-token file",
            )
        if account.poll_seconds < 1:
            fail(f"{where}.poll_seconds", "must be at least 1")


def _check_socket_access(listener: Listener, fail: Callable[[str, str], typing.NoReturn]) -> None:
    for key in ("socket_mode", "socket_group"):
        if getattr(listener, key) and not listener.socket:
            fail(f"listener.{key}", "applies only to a unix socket: set listener.socket too")
    if listener.socket_mode and not re.fullmatch(r"0?[0-7]{3}", listener.socket_mode):
        fail("listener.socket_mode", f'octal digits like "0660", not {listener.socket_mode!r}')
    if listener.socket_group:
        try:
            grp.getgrnam(listener.socket_group)
        except KeyError:
            fail("listener.socket_group", f"no group {listener.socket_group!r} on this machine")


def _check_database_url(url: str, path: Path) -> None:
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigError(
            f"database.url: {url!r} is not a URL like sqlite:///var/mailgate.db (in {path})"
        )
    if scheme == "sqlite":
        if not rest.startswith("/") or len(rest) < 2:
            raise ConfigError(
                "database.url: a SQLite URL needs a path, e.g. sqlite:///var/mailgate.db"
                f" (in {path})"
            )
    elif scheme not in ("postgresql", "postgres", "psycopg2", "postgresql+psycopg2"):
        raise ConfigError(
            f"database.url: unsupported database {scheme!r}; use sqlite:// or postgresql://"
            f" (in {path})"
        )


def read_secret_key(config: Config, *, create: bool) -> bytes:
    """The HMAC key for reply tokens: ``MAILGATE_SECRET_KEY`` or the key file.

    With ``create`` a missing key file is generated (0600): a new install works
    at once, and the key never appears in the config or the logs.
    """
    env = os.environ.get(SECRET_ENV)
    if env:
        return env.encode()
    key_path = Path(config.gateway.secret_key_file)
    try:
        key = key_path.read_bytes().strip()
    except FileNotFoundError:
        if not create:
            raise ConfigError(
                f"gateway.secret_key_file: {key_path} does not exist; run `mailgate db upgrade` "
                f"or set {SECRET_ENV} (in {config.path})"
            ) from None
        key = _create_key(key_path, config.path)
    except OSError as exc:
        raise ConfigError(
            f"gateway.secret_key_file: cannot read {key_path}: {exc.strerror} (in {config.path})"
        ) from None
    if len(key) < 16:
        raise ConfigError(f"gateway.secret_key_file: {key_path} holds fewer than 16 bytes")
    return key


def _create_key(key_path: Path, config_path: Path) -> bytes:
    """Write a new random key; several processes starting at once end with one key.

    The key is written to a temporary file and linked into place, so nobody ever
    reads half a key; whoever loses the race reads the winner's.
    """
    key = os.urandom(32).hex().encode()
    try:
        key_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = key_path.with_name(f".{key_path.name}.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(key + b"\n")
        try:
            os.link(tmp, key_path)
        except FileExistsError:
            key = key_path.read_bytes().strip()
        finally:
            tmp.unlink()
    except OSError as exc:
        raise ConfigError(
            f"gateway.secret_key_file: cannot create {key_path}: {exc.strerror} (in {config_path})"
        ) from None
    return key


def read_password(env_name: str, file_name: str, what: str) -> str:
    """A password named by the config: from an environment variable or a file."""
    if env_name:
        value = os.environ.get(env_name)
        if value is None:
            raise ConfigError(f"{what}.password_env: environment variable {env_name} is not set")
        return value
    if file_name:
        try:
            return Path(file_name).read_text().strip()
        except OSError as exc:
            raise ConfigError(
                f"{what}.password_file: cannot read {file_name}: {exc.strerror}"
            ) from None
    return ""
