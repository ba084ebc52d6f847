"""Reading the config file: TOML in, a validated ``Config`` out, or one line saying why not.

The config file is the admin's interface, so every error names the key and the
file in one line (``ConfigError``), never a traceback. Secrets are never read
from the file itself: only the names of environment variables or files holding
them. Relative paths in the file are relative to the file's own directory
(``paths.py``), and without ``--config`` or ``MAILGATE_CONFIG`` only
``/etc/mailgate/mailgate.toml`` is read: the working directory never decides which
gateway a command talks to.

Imports the standard library, ``mailgate.errors`` and the sections.
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
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from mailgate.config.blobs import POSTGRES_SCHEMES, check_both_set, resolve_blob_url
from mailgate.config.calendars import check_time, normalise_calendars, parse_wall_duration
from mailgate.config.paths import resolve_paths
from mailgate.config.sections import Config, Listener, parse_rate
from mailgate.config.web import check_web
from mailgate.config.webhooks import check_webhooks
from mailgate.errors import ConfigError

CONFIG_ENV = "MAILGATE_CONFIG"
DEFAULT_CONFIG_PATHS = (Path("/etc/mailgate/mailgate.toml"),)

_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")

# TOML spells lists of tables in the singular ([[mailbox]]); the dataclass field is plural.
_TABLE_ARRAYS = {
    "mailbox": "mailboxes",
    "team": "teams",
    "agent": "agents",
    "imap": "imap",
    "route": "routes",
    "calendar": "calendars",
    "sla": "slas",
    "webhook": "webhooks",
}
_SECRET_KEYS = {"password", "secret", "secret_key", "token", "client_secret", "refresh_token"}


def find_config_path(explicit: str | None) -> Path:
    """``--config`` wins, then ``MAILGATE_CONFIG``, then ``/etc/mailgate/mailgate.toml``."""
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
    normalise_calendars(renamed)
    check_both_set(renamed, path)
    config: Config = resolve_blob_url(resolve_paths(_build(Config, renamed, "", path)), path)
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
    check_web(config.web, fail)
    if not re.fullmatch(r"[A-Za-z][A-Za-z0-9-]{0,15}", config.gateway.ticket_prefix):
        fail("gateway.ticket_prefix", "letters, digits and '-', starting with a letter, ≤16")
    if not 1 <= config.gateway.first_ticket_number < 10**15:
        fail("gateway.first_ticket_number", "must be between 1 and 999999999999999")
    if config.gateway.max_message_size < 1024:
        fail("gateway.max_message_size", "must be at least 1024 bytes")
    if not config.gateway.max_processing_seconds > 0:
        fail("gateway.max_processing_seconds", "must be more than 0")
    if not 1 <= config.gateway.ingest_workers <= 16:
        fail("gateway.ingest_workers", "must be between 1 and 16")
    if config.gateway.ingest_workers > 1 and config.database.url.startswith("sqlite"):
        fail("gateway.ingest_workers", "more than 1 needs PostgreSQL (SQLite has one writer)")
    for key in ("max_mime_depth", "max_mime_parts", "max_header_count"):
        if getattr(config.gateway, key) < 1:
            fail(f"gateway.{key}", "must be at least 1")
    if config.notices.attach_max_bytes < 0:
        fail("notices.attach_max_bytes", "must not be negative")
    if config.outbound.max_message_size < 1024:
        fail("outbound.max_message_size", "must be at least 1024 bytes")
    if config.lifecycle.reopen_window_days < 0:
        fail("lifecycle.reopen_window_days", "must not be negative")
    if config.lifecycle.max_collaborators < 0:
        fail("lifecycle.max_collaborators", "must not be negative")
    if not 1 <= config.outbound.smtp.connections <= 32:
        fail("outbound.smtp.connections", "must be between 1 and 32")
    if config.outbound.max_recipients < 1:
        fail("outbound.max_recipients", "must be at least 1")
    team_keys = {t.key for t in config.teams}
    agent_keys = {a.key for a in config.agents}
    for i, rule in enumerate(config.routes):
        if rule.category and config.tickets.categories and config.category(rule.category) is None:
            fail(f"route[{i}].category", f"{rule.category!r} is not in tickets.categories")
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
        if box.notices.attach_max_bytes < -1:
            fail(f"{where}.notices.attach_max_bytes", "must not be negative")
        if box.max_attachment_size < 1:
            fail(f"{where}.max_attachment_size", "must be at least 1 byte")
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
    try:
        if parse_wall_duration(limits.held_acknowledgement_max_age) is None:
            raise ValueError("must not be empty")
    except ValueError as exc:
        fail("outbound.limits.held_acknowledgement_max_age", str(exc))
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
    if not (0 <= listener.port < 65536):  # 0: any free port (tests read the one bound)
        fail("listener.port", f"{listener.port} is not a port number")
    _check_socket_access(listener, fail)
    if config.metrics.listen and not re.fullmatch(r"[^\s:]+:\d{1,5}", config.metrics.listen):
        fail("metrics.listen", f'"host:port" like "127.0.0.1:9464", not {config.metrics.listen!r}')
    check_time(config, fail)
    check_webhooks(config.webhooks, fail)
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
    elif scheme not in POSTGRES_SCHEMES:
        raise ConfigError(
            f"database.url: unsupported database {scheme!r}; use sqlite:// or postgresql://"
            f" (in {path})"
        )
