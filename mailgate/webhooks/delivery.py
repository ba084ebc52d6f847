"""Deliver the queued webhooks: claim, mark ``sending``, POST, settle — on a thread of its own.

Mail and webhooks never wait for each other: the mail sender skips webhook rows,
this sender takes only those, and ``serve`` runs it on its own thread, so a slow
or broken receiver neither delays a notice nor trips the mail's circuit breaker.
The deliveries of one URL leave in order (``store.webhooks.claim_due``). The
backoff and the number of attempts are the outbox's (``outbound.max_attempts``).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from mailgate import outbox, store
from mailgate.config import Config, Webhook, read_webhook_secret
from mailgate.context import Context
from mailgate.errors import ConfigError
from mailgate.logs import event
from mailgate.store import outbox as outbox_rows
from mailgate.store import webhooks as hook_rows
from mailgate.store.webhooks import Delivery
from mailgate.webhooks.post import Answer, post

log = logging.getLogger("mailgate.webhooks")


@dataclass
class Report:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def deliver(config: Config, *, limit: int | None = None) -> Report:
    """POST what is due, oldest first per URL, until nothing is due (or ``limit`` were tried)."""
    report = Report()
    worker = uuid.uuid4().hex
    now = store.utcnow()
    # Read first, so that a run with nothing to do (most of them, every few seconds while
    # mail arrives) takes no write lock: on SQLite the ingest worker would wait for it.
    with store.reads():
        over = outbox_rows.lease_over(now)
    if over:
        with store.write_transaction():
            outbox_rows.requeue_expired_claims(now)
            hook_rows.requeue_stuck(now)
    tried = 0
    while limit is None or tried < limit:
        size = config.outbound.batch_size if limit is None else limit - tried
        now = store.utcnow()
        with store.reads():
            if not hook_rows.due(now):
                break
        with store.write_transaction():
            batch = hook_rows.claim_due(size, worker, now, now + outbox.LEASE)
        if not batch:
            break
        tried += len(batch)
        for item_id in batch:
            with store.write_transaction():
                item = hook_rows.start_sending(item_id, worker, store.utcnow() + outbox.LEASE)
            if item is not None:
                _settle(config, item, _send(config, item), report)
    if report.sent or report.failed:
        event(log, "webhooks.delivered", sent=report.sent, deferred=report.retried,
              failed=report.failed)  # fmt: skip
    return report


def deliver_for(ctx: Context) -> Report:
    """``deliver`` as ``serve``'s scheduled job calls it."""
    return deliver(ctx.config)


def hook_for(config: Config, url: str) -> tuple[Webhook, int] | None:
    """The configured hook of ``url`` (the loader allows one per URL) and its index."""
    for index, hook in enumerate(config.webhooks):
        if hook.url == url:
            return hook, index
    return None


def _send(config: Config, item: Delivery) -> Answer:
    found = hook_for(config, item.url)
    if found is None:
        return Answer(False, False, "no [[webhook]] with this url in the config any more")
    try:
        secret = read_webhook_secret(*found)
    except ConfigError as exc:  # an admin's fix away: retried
        return Answer(False, True, str(exc))
    try:
        return post(
            item.url, item.body, secret=secret, event=item.event, delivery_id=item.delivery_id
        )
    except Exception as exc:  # one bad URL must not stop the others
        log.exception("webhook delivery failed", extra={"mailgate_fields": {"id": item.id}})
        return Answer(False, False, f"internal error: {type(exc).__name__}: {exc}")


def _settle(config: Config, item: Delivery, answer: Answer, report: Report) -> None:
    fields: dict[str, Any] = {"id": item.id, "event": item.event, "url": _shown(item.url)}
    now = store.utcnow()
    if answer.ok:
        with store.write_transaction():
            outbox_rows.settle(item.id, "sent", sent_at=now, last_error="")
        report.sent += 1
        event(log, "webhook.sent", **fields, delivery=item.delivery_id)
        return
    give_up = answer.temporary and item.attempts >= config.outbound.max_attempts
    if answer.temporary and not give_up:
        wait = outbox.backoff(item.attempts)
        if answer.retry_after:
            wait = max(wait, dt.timedelta(seconds=min(answer.retry_after, 6 * 3600)))
        with store.write_transaction():
            outbox_rows.settle(
                item.id, "queued", next_attempt_at=now + wait, last_error=answer.error[:2000]
            )
        report.retried += 1
        name = "webhook.deferred"
    else:
        error = answer.error
        if give_up:
            error = f"gave up after {item.attempts} attempts: {error}"
        with store.write_transaction():
            outbox_rows.settle(item.id, "failed", last_error=error[:2000])
        report.failed += 1
        name = "webhook.failed"
    report.errors.append(f"{_shown(item.url)}: {answer.error}")
    event(log, name, logging.WARNING, **fields, attempts=item.attempts, error=answer.error)


def _shown(url: str) -> str:
    """A URL fit for logs: scheme, host and path — a query string may carry a token."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"
