"""``mailgate check``: everything an admin wants to know before starting, one PASS/FAIL line each.

Config, the secret key, the database and its migrations, whether ``serve`` runs
(its heartbeat), what ``serve`` itself last met on each IMAP account (the ledger),
the blob store, each IMAP login, the outbound relay or Maildir, each webhook's secret, the
templates, the listener's address. A monitoring probe runs it: exit 1 while anything fails.
"""

from __future__ import annotations

import hashlib
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mailgate import outbox, store
from mailgate.admin import database
from mailgate.admin.status import serve_problem
from mailgate.admin.templates import check_templates
from mailgate.blobs import open_store
from mailgate.config import Config, load, read_secret_key, read_webhook_secret
from mailgate.errors import ConfigError
from mailgate.logs import redact_url
from mailgate.store import health, ledger
from mailgate.store.db import utcnow


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str

    def __str__(self) -> str:
        return f"{'PASS' if self.ok else 'FAIL'}  {self.name}: {self.detail}"


def checks(config: Config) -> list[Check]:
    """Everything an admin wants to know before starting: each a pass/fail line."""
    results = [
        Check(
            "config",
            True,
            f"{config.path}: {len(config.mailboxes)} mailbox(es), "
            f"{len(config.agents)} agent(s), {len(config.imap)} IMAP account(s)",
        )
    ]
    results.append(_check_secret(config, create=False))
    database = _check_database(config)
    results.append(database)
    if database.ok:
        try:
            results.append(_check_serve())
            results.extend(_check_ledger(row) for row in ledger.status(config) if row["last_error"])
        except Exception as exc:  # noqa: BLE001
            results.append(Check("database", False, f"{redact_url(config.database.url)}: {exc}"))
    for account in config.imap:
        # Here, not at the top: serve imports this module (its start checks and SIGHUP's
        # reload), and needs the IMAP client only with accounts to poll.
        from mailgate.transports import imap as imap_transport

        try:
            results.append(Check(f"imap {account.name}", True, imap_transport.check(account)))
        except Exception as exc:  # noqa: BLE001
            results.append(Check(f"imap {account.name}", False, f"{type(exc).__name__}: {exc}"))
    results.append(_check_blobs(config))
    results.append(_check_outbound(config))
    results.extend(_check_webhook(config, i) for i in range(len(config.webhooks)))
    results.append(_templates(config))
    listener = config.listener
    if listener.enabled:
        results.append(_check_listener(config))
    return results


def serve_checks(config: Config) -> list[Check]:
    """What ``serve`` needs before it may start; a failing one makes it refuse (exit 78).

    The secret key (created here on the first start, as serve always did), the database
    and its schema, the templates (a broken one would quarantine every mail), and the
    listener's address (a port in use). IMAP and the relay are not among them: serve
    retries those while it runs, and ``check`` reports them.
    """
    results = [_check_secret(config, create=True), _check_database(config)]
    results.append(_templates(config))
    if config.listener.enabled and not config.listener.socket:
        listener = config.listener
        results.extend(_in_use(config, "listener", "listener.port", listener.host, listener.port))
    if config.metrics.listen:
        host, _, port = config.metrics.listen.rpartition(":")
        results.extend(_in_use(config, "metrics", "metrics.listen", host, int(port)))
    return results


def _check_secret(config: Config, *, create: bool) -> Check:
    """The secret key is readable (``create``: made on the first start, by serve only)."""
    try:
        read_secret_key(config, create=create)
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line
        return Check("secret key", False, str(exc))
    return Check("secret key", True, "readable")


def _check_webhook(config: Config, index: int) -> Check:
    """A hook's signing secret is there (unset or unreadable: its deliveries wait)."""
    hook = config.webhooks[index]
    try:
        read_webhook_secret(hook, index)
    except ConfigError as exc:
        return Check(f"webhook {hook.url}", False, f"{exc} (in {config.path})")
    return Check(f"webhook {hook.url}", True, f"secret readable; {', '.join(hook.events)}")


def _check_database(config: Config) -> Check:
    """The database opens and its schema is the one this version needs."""
    where = redact_url(config.database.url)
    try:
        store.open_database(config.database.url, sync=config.storage.sync)
        ok, status = store.schema_status()
    except Exception as exc:  # noqa: BLE001
        return Check("database", False, f"{where}: {exc}")
    return Check("database", ok, f"{where}: {status}")


def _check_blobs(config: Config) -> Check:
    """The blob store answers (a read only: check never writes blobs or folders)."""
    try:
        blobs = open_store(config)
        blobs.exists(hashlib.sha256(b"").hexdigest())
    except Exception as exc:  # noqa: BLE001 - every failure becomes one line
        return Check("blob store", False, str(exc))
    return Check("blob store", True, f"{blobs.url}: reachable")


def _in_use(config: Config, name: str, key: str, host: str, port: int) -> list[Check]:
    """A FAIL when ``host:port`` cannot be bound (taken by another process)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            why = f"{key}: {host}:{port} is in use ({exc.strerror}) (in {config.path})"
            return [Check(name, False, why)]
    return []


def reload_config(path: Path) -> Config:
    """The config and templates on disk, if serve may switch to them (SIGHUP).

    Anything that would make ``serve`` refuse to start refuses the reload: a config
    error, a template that does not render. Agents and teams are mirrored as at start.
    Raises ``ConfigError`` with the reason; the running serve keeps its old files.
    """
    config = load(path)
    templates = _templates(config)
    if not templates.ok:
        raise ConfigError(f"templates: {templates.detail}")
    database.sync_directory(config)
    return config


def _templates(config: Config) -> Check:
    problems = check_templates(config)
    errors = [p for p in problems if p.severity == "error"]
    shown = errors or problems
    return Check(
        "templates",
        not errors,
        "all render" if not problems else "; ".join(str(p) for p in shown[:5]),
    )


def _check_serve() -> Check:
    """Is ``mailgate serve`` running? Its heartbeat is at most 30 s old."""
    beats = health.heartbeats()
    problem = serve_problem(beats, utcnow())
    if problem:
        return Check("serve", False, problem.removeprefix("serve: "))
    newest = beats[0]
    since = f"{newest.started_at:%Y-%m-%d %H:%M:%S} UTC"
    return Check("serve", True, f"running since {since} (pid {newest.pid} on {newest.host})")


def _check_ledger(row: dict[str, Any]) -> Check:
    """What ``mailgate serve`` itself ran into: a problem newer than its last success fails."""
    when = f"{row['last_error_at']:%Y-%m-%d %H:%M:%S} UTC" if row["last_error_at"] else "earlier"
    if row["failing"]:
        since = row["last_success_at"]
        worked = f"; last worked {since:%Y-%m-%d %H:%M:%S} UTC" if since else "; never worked"
        detail = f"serve failed at {when}: {row['last_error']}{worked}"
    else:
        detail = f"working; last problem at {when}: {row['last_error']}"
    return Check(f"imap ledger {row['name']}", not row["failing"], detail)


def _check_outbound(config: Config) -> Check:
    if config.outbound.transport == "maildir":
        root = Path(config.outbound.maildir)
        try:
            for sub in ("tmp", "new", "cur"):
                (root / sub).mkdir(parents=True, exist_ok=True)
            probe = root / "tmp" / ".mailgate-check"
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            return Check("outbound", False, f"maildir {root}: {exc.strerror}")
        return Check("outbound", True, f"maildir {root} is writable")
    transport = outbox.SmtpTransport(config)
    s = config.outbound.smtp
    try:
        client = transport._connect()
        client.noop()
        client.quit()
    except Exception as exc:  # noqa: BLE001
        return Check("outbound", False, f"smtp {s.host}:{s.port}: {exc}")
    login = f" as {s.username}" if s.username else ""
    return Check("outbound", True, f"smtp {s.host}:{s.port} ({s.security}){login} accepts us")


def _check_listener(config: Config) -> Check:
    listener = config.listener
    if listener.socket:
        return Check("listener", True, f"{listener.protocol} on {listener.socket}")
    with socket.socket() as probe:
        try:
            probe.bind((listener.host, listener.port))
        except OSError as exc:
            return Check(
                "listener",
                True,
                f"{listener.protocol} {listener.host}:{listener.port} is in"
                f" use ({exc.strerror}) — fine if mailgate serve is running",
            )
    return Check("listener", True, f"{listener.protocol} {listener.host}:{listener.port} is free")
