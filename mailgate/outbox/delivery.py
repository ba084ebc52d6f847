"""Delivery: claim what is due, mark it ``sending``, hand it over, mark it ``sent``.

The states and the exactly-once rules are in the package's docstring; the rows
are read and written through ``store.outbox`` only. Imports the store, config,
errors and the relays.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field, replace
from typing import BinaryIO

from mailgate import store
from mailgate.blobs import BlobStore, open_store
from mailgate.config import Config
from mailgate.config.calendars import parse_wall_duration
from mailgate.errors import TemplateError, TemporaryFailure, UsageError
from mailgate.logs import event, redact
from mailgate.notices import snapshot
from mailgate.outbox.relays import (
    Outcome,
    Outgoing,
    PermanentError,
    Refusal,
    TemporaryError,
    Transport,
    transport_for,
)
from mailgate.outbox.streaming import MailFile
from mailgate.store import events as event_rows
from mailgate.store import messages as message_rows
from mailgate.store import outbox as outbox_rows
from mailgate.store.rows import OutboxMail, OutboxRow

log = logging.getLogger("mailgate.outbox")

LEASE = dt.timedelta(minutes=5)
_BACKOFF_FIRST = 30
_BACKOFF_MAX = 6 * 3600


@dataclass
class Report:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    uncertain: int = 0
    errors: list[str] = field(default_factory=list)


def backoff(attempts: int) -> dt.timedelta:
    return dt.timedelta(seconds=min(_BACKOFF_FIRST * 2 ** max(attempts - 1, 0), _BACKOFF_MAX))


def deliver(
    config: Config, transport: Transport | None = None, *, limit: int | None = None
) -> Report:
    """Send what is due, batch by batch, until nothing is due (or ``limit`` mails were tried)."""
    own_transport = transport is None
    transport = transport or transport_for(config)
    report = Report()
    worker = uuid.uuid4().hex
    try:
        recover(config, transport)
        drop_stale_acknowledgements(config)
        tried = 0
        while limit is None or tried < limit:
            size = config.outbound.batch_size
            batch = _claim(size if limit is None else min(size, limit - tried), worker)
            if not batch:
                break
            tried += len(batch)
            if not _send_batch(config, transport, batch, report, worker):
                break
    finally:
        if own_transport:
            transport.close()
    return report


def drop_stale_acknowledgements(config: Config) -> int:
    """Acknowledgements the breaker held longer than ``held_acknowledgement_max_age`` are
    dropped, each with an event on its ticket: "we got your mail" a day late helps nobody."""
    age = parse_wall_duration(config.outbound.limits.held_acknowledgement_max_age) or 0
    if age <= 0:
        return 0
    limit = config.outbound.limits.held_acknowledgement_max_age
    why = f"dropped: held by the circuit breaker longer than {limit}"
    before = store.utcnow() - dt.timedelta(seconds=age)
    with store.reads():  # (a run takes the write lock only for what it changes)
        if not outbox_rows.stale_held("acknowledgement", before):
            return 0
    with store.write_transaction():
        dropped = outbox_rows.drop_stale_held("acknowledgement", before, why)
        for item_id, ticket_id in dropped:
            if ticket_id is not None:
                event_rows.add(
                    ticket_id,
                    "notice_dropped",
                    "system",
                    new=str(item_id),
                    detail=f"acknowledgement: {why} (outbound.limits.held_acknowledgement_max_age)",
                )
    for item_id, _ in dropped:
        event(log, "outbox.dropped", id=item_id, notice="acknowledgement", reason=why)
    return len(dropped)


def _claim(size: int, worker: str) -> list[int]:
    now = store.utcnow()
    with store.reads():
        if not outbox_rows.mail_due(now):
            return []
    with store.write_transaction():
        return outbox_rows.claim_due(size, worker, now, now + LEASE)


def _release(ids: list[int]) -> None:
    if ids:
        with store.write_transaction():
            outbox_rows.release_claims(ids, store.utcnow())


def _send_batch(
    config: Config, transport: Transport, batch: list[int], report: Report, worker: str
) -> bool:
    """Send a claimed batch; returns False when the transport is down (the rest is released).

    The batch is read in one statement and its queued notices composed from their
    snapshots before anything is marked (a notice that cannot be composed fails
    there, with its reason). The mails then go in rounds, one on each of the
    transport's connections (``width``): a round is marked ``sending`` in one commit
    before it is handed over — with the composed bytes, so a retry sends the same
    mail; the ``sent`` marks of the previous round ride along in that same commit, so
    a round costs one commit, and a crash leaves at most one round
    (``outbound.smtp.connections`` mails) ``sending``. A connection that breaks defers
    its own mail; the others are marked as the relay answered them, and the rest of
    the batch waits for the next run.
    """
    claimed = outbox_rows.claimed_mails(batch, worker)
    if claimed:
        try:
            # Reached before anything is composed: a relay that is down costs no composing
            # (a run every few seconds composed a whole batch to throw it away).
            transport.ready()
        except TemporaryError as exc:
            _deferred(config, claimed[0], exc, report)
            _release([m.id for m in claimed[1:]])
            return False
    mails = _composed(config, claimed, report)
    done: list[tuple[OutboxMail, list[Refusal]]] = []
    unavailable, first = False, 0
    while first < len(mails) and not unavailable:
        # The width may shrink during a run (a relay that takes fewer connections).
        group = mails[first : first + transport.width]
        first += len(group)
        started: list[OutboxMail] = []
        with store.write_transaction():
            _marks_sent(config, done, report)
            done = []
            for item, composed in group:
                # A fresh lease from now: recovery treats the mail as stuck only after it.
                if outbox_rows.claimed_to_sending(
                    item.id, worker, item.attempts, store.utcnow() + LEASE, composed
                ):
                    started.append(item if composed is None else replace(item, content=composed))
        for item, outcome in _handed_over(config, transport, started):
            if isinstance(outcome, TemporaryError):
                _deferred(config, item, outcome, report)
                unavailable = unavailable or outcome.unavailable
            elif isinstance(outcome, PermanentError):
                _failed(item, outcome, report)
            else:
                done.append((item, outcome))
        if unavailable:
            _release([m.id for m, _ in mails[first:]])
    if done:
        with store.write_transaction():
            _marks_sent(config, done, report)
    return not unavailable


def _handed_over(
    config: Config, transport: Transport, items: list[OutboxMail]
) -> list[tuple[OutboxMail, Outcome]]:
    """A round: each mail to the transport (one a connection), and what became of it."""
    outcomes: dict[int, Outcome] = {}
    going: list[tuple[OutboxMail, Outgoing]] = []
    for item in items:
        try:
            content = _content(config, item)
        except (TemporaryError, PermanentError) as exc:
            outcomes[item.id] = exc
            continue
        going.append((item, Outgoing(item.sender, item.recipients, content, item.message_id)))
    if going:
        try:
            sent = transport.send_many([mail for _, mail in going])
        except Exception as exc:
            log.exception("sending failed", extra={"mailgate_fields": {"ids": len(going)}})
            why = PermanentError(f"internal error: {type(exc).__name__}: {exc}")
            sent = [why for _ in going]
        outcomes.update((item.id, outcome) for (item, _), outcome in zip(going, sent, strict=True))
    return [(item, outcomes[item.id]) for item in items]


def _composed(
    config: Config, claimed: list[OutboxMail], report: Report
) -> list[tuple[OutboxMail, bytes | None]]:
    """The claimed mails with the MIME of those queued as a snapshot (``notices.snapshot``);
    None for a mail queued whole. The thread entries get their text, in one commit with
    the rows that cannot be composed (a template error): those fail here, never handed
    over, their one-line reason on the row and on their ticket."""
    ready: list[tuple[OutboxMail, bytes | None]] = []
    texts: list[tuple[str, str]] = []
    broken: list[tuple[OutboxMail, str]] = []
    for item in claimed:
        if not snapshot.is_snapshot(item.content):
            ready.append((item, None))
            continue
        try:
            composed = snapshot.compose_mail(config, _store(config), item.content)
        except TemplateError as exc:
            broken.append((item, f"template error: {exc}"))
            continue
        except TemporaryFailure as exc:
            # The blob store is out of reach: composed on a later run.
            broken.append((item, ""))
            report.errors.append(str(exc))
            continue
        except Exception as exc:
            log.exception("composing failed", extra={"mailgate_fields": {"id": item.id}})
            broken.append((item, f"internal error composing the notice: {type(exc).__name__}"))
            continue
        ready.append((item, composed.content))
        texts.append((item.message_id, composed.text))
    if texts or broken:
        with store.write_transaction():
            message_rows.set_outbound_texts(texts)
            for item, why in broken:
                if not why:
                    outbox_rows.release_claims([item.id], store.utcnow() + backoff(item.attempts))
                    continue
                outbox_rows.settle(item.id, "failed", last_error=why[:2000])
                _ticket_event(item.ticket_id, item.notice, "notice_failed", why)
    for item, why in broken:
        if why:
            report.failed += 1
            report.errors.append(why)
            event(
                log, "notice.failed", logging.WARNING, id=item.id, notice=item.notice,
                error=redact(why),
            )  # fmt: skip
    return ready


def _content(config: Config, item: OutboxMail) -> bytes | MailFile:
    """The mail's bytes, or the blob of a notice composed into the blob store (it carries
    files), read as it is sent."""
    sha256 = outbox_rows.referenced_blob(item.content)
    if not sha256:
        return item.content
    blobs = _store(config)
    try:
        size = blobs.size(sha256)
    except FileNotFoundError:
        raise PermanentError(
            f"the composed mail {sha256[:12]}… is missing from the blob store"
        ) from None
    except TemporaryFailure as exc:
        raise TemporaryError(str(exc), unavailable=True) from exc
    return MailFile(size, lambda: _opened(blobs, sha256))


def _opened(blobs: BlobStore, sha256: str) -> BinaryIO:
    """The blob as a reader; a store out of reach is an ``OSError`` to the relays (which
    retry later), like a file that cannot be read."""
    try:
        return blobs.open(sha256)
    except TemporaryFailure as exc:
        raise OSError(str(exc)) from exc


_stores: dict[tuple[str, str, str], BlobStore] = {}


def _store(config: Config) -> BlobStore:
    """One blob store per configuration and process (its connections are kept)."""
    storage = config.storage
    key = (storage.blob_url, storage.blob_dir, storage.s3_endpoint)
    found = _stores.get(key)
    if found is None:
        found = _stores[key] = open_store(config)
    return found


def _marks_sent(
    config: Config, done: list[tuple[OutboxMail, list[Refusal]]], report: Report
) -> None:
    """A round the relay took: the mails every recipient took are ``sent`` in one
    statement (a statement a notice was most of the marks' cost); the others one by one."""
    plain = [item for item, refused in done if not refused]
    outbox_rows.settle_sent([item.id for item in plain], store.utcnow())
    for item in plain:
        report.sent += 1
        event(
            log, "notice.sent", id=item.id, notice=item.notice,
            recipients=len(item.recipients), message_id=item.message_id,
        )  # fmt: skip
    for item, refused in done:
        if refused:
            _mark_sent(config, item, refused, report)


def _mark_sent(config: Config, item: OutboxMail, refused: list[Refusal], report: Report) -> None:
    """The relay took the mail: sent — or, for the recipients it deferred, queued again."""
    failed = [str(r) for r in refused if not r.temporary]
    deferred = [r for r in refused if r.temporary]
    if failed:
        _ticket_event(
            item.ticket_id,
            item.notice,
            "notice_failed",
            "some recipients refused: " + "; ".join(failed),
        )
    if deferred:
        _defer_recipients(config, item, deferred, report)
        return
    outbox_rows.settle(item.id, "sent", sent_at=store.utcnow(), last_error="; ".join(failed)[:2000])
    report.sent += 1
    event(
        log,
        "notice.sent",
        id=item.id,
        notice=item.notice,
        recipients=len(item.recipients),
        message_id=item.message_id,
    )


def _defer_recipients(
    config: Config, item: OutboxMail, deferred: list[Refusal], report: Report
) -> None:
    """The others have the mail; keep it queued for exactly the recipients answered 4xx."""
    detail = "; ".join(map(str, deferred))
    if item.attempts >= config.outbound.max_attempts:
        outbox_rows.settle(item.id, "failed", last_error=f"gave up on {detail}"[:2000])
        _ticket_event(
            item.ticket_id,
            item.notice,
            "notice_failed",
            f"gave up after {item.attempts} attempts: {detail}",
        )
        report.failed += 1
    else:
        outbox_rows.settle(
            item.id,
            "queued",
            recipients=[r.recipient for r in deferred],
            last_error=f"deferred for some recipients: {detail}"[:2000],
            next_attempt_at=store.utcnow() + backoff(item.attempts),
        )
        report.retried += 1
    report.errors.append(detail)
    event(
        log,
        "notice.deferred",
        logging.WARNING,
        id=item.id,
        notice=item.notice,
        attempts=item.attempts,
        recipients=len(deferred),
        delivered=len(item.recipients) - len(deferred),
        error=redact(detail),
    )


def _deferred(config: Config, item: OutboxMail, exc: TemporaryError, report: Report) -> None:
    give_up = item.attempts >= config.outbound.max_attempts
    with store.write_transaction():
        outbox_rows.settle(
            item.id,
            "failed" if give_up else "queued",
            last_error=str(exc)[:2000],
            next_attempt_at=store.utcnow() + backoff(item.attempts),
        )
        if give_up:
            _ticket_event(
                item.ticket_id,
                item.notice,
                "notice_failed",
                f"gave up after {item.attempts} attempts: {exc}",
            )
    if give_up:
        report.failed += 1
    else:
        report.retried += 1
    report.errors.append(str(exc))
    event(
        log,
        "notice.deferred",
        logging.WARNING,
        id=item.id,
        notice=item.notice,
        attempts=item.attempts,
        error=redact(str(exc)),
    )


def _failed(item: OutboxMail, exc: PermanentError, report: Report) -> None:
    with store.write_transaction():
        outbox_rows.settle(item.id, "failed", last_error=str(exc)[:2000])
        _ticket_event(item.ticket_id, item.notice, "notice_failed", str(exc))
    report.failed += 1
    report.errors.append(str(exc))
    event(
        log,
        "notice.failed",
        logging.WARNING,
        id=item.id,
        notice=item.notice,
        error=redact(str(exc)),
    )


def _ticket_event(ticket_id: int | None, notice: str, kind: str, detail: str) -> None:
    if ticket_id is None:
        return
    event_rows.add(ticket_id, kind, "system", new=notice, detail=redact(detail)[:1000])


def recover(config: Config, transport: Transport) -> None:
    """Settle rows a crashed sender left behind (expired claims, interrupted sends)."""
    now = store.utcnow()
    with store.reads():
        if not outbox_rows.lease_over(now):
            return
    with store.write_transaction():
        outbox_rows.requeue_expired_claims(now)
        stale = outbox_rows.stuck_sending(now)
        for item in stale:
            done = transport.delivered(item.message_id)
            if done is True:
                outbox_rows.settle(item.id, "sent", sent_at=now)
            elif done is False:
                outbox_rows.settle(item.id, "queued", next_attempt_at=now)
            else:
                outbox_rows.settle(
                    item.id,
                    "uncertain",
                    last_error="the sender stopped while handing this mail over; not resent",
                )
                _ticket_event(
                    item.ticket_id,
                    item.notice,
                    "notice_uncertain",
                    "delivery uncertain after a crash; not sent again to avoid a duplicate"
                    f" (mailgate outbox retry {item.id} sends it)",
                )


def retry(item_id: int) -> OutboxRow:
    """Queue a failed or uncertain mail again, due now (an admin's decision)."""
    with store.write_transaction():
        item = outbox_rows.by_id(item_id)
        if item is None:
            raise UsageError(f"no outbox item {item_id}")
        if item.status not in ("failed", "uncertain"):
            # Queued or in flight: it goes anyway. Sent: sending again would be a duplicate.
            raise UsageError(
                f"outbox item {item_id} is {item.status}; only failed or uncertain mail is retried"
            )
        outbox_rows.settle(item.id, "queued", next_attempt_at=store.utcnow(), last_error="")
    return item
