"""Due work: everything that happens because time passed — ``mailgate jobs run`` and serve's job.

The front door. ``run(ctx, at=…)`` carries out every timer due at ``at`` (default:
now), earliest first — SLA warnings and breaches, pending reminders, auto-resolve,
auto-close (``actions.py``) — the very code ``serve`` runs every
``jobs.due_seconds``. Due work is found through the partial index on undone
timers, so a run costs what is due, not what is open.

Exactly once, under failure: each action runs in its own transaction that locks
the ticket (PostgreSQL: ``FOR UPDATE SKIP LOCKED`` — two processes never take
the same ticket; SQLite: the IMMEDIATE write transaction), re-reads the timer
undone under that lock, and commits the events, the notices (outbox rows) and
the timer's "done" mark together. A crash before the commit leaves nothing; after
it, the mark. After downtime what fell due happens once, in order, each event
carrying its real due time. ``dry_run`` only lists what would happen.

Imports config, events, lifecycle, routing, reactions, sla and the store.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field

from mailgate import notices, reactions, sla
from mailgate.context import Context
from mailgate.errors import MailgateError, TemporaryFailure
from mailgate.events import Journal
from mailgate.jobs.actions import ACTIONS, WOULD
from mailgate.logs import event
from mailgate.mail.subject import format_tag
from mailgate.store import sla as rows
from mailgate.store import tickets as ticket_rows
from mailgate.store import utcnow, write_transaction

log = logging.getLogger("mailgate.jobs")
_BATCH = 200


@dataclass(frozen=True)
class Done:
    """One piece of due work, done (or, in a dry run, what would be done)."""

    ticket: int
    tag: str
    kind: str
    key: str
    due_at: dt.datetime
    outcome: str

    def line(self) -> str:
        due = self.due_at.isoformat(timespec="seconds")
        return f"{due}Z {self.tag} {self.kind} {self.key}: {self.outcome}"


@dataclass
class Report:
    at: dt.datetime
    dry_run: bool
    done: list[Done] = field(default_factory=list)
    skipped: int = 0  # held by another process right now: it does them
    failed: list[str] = field(default_factory=list)  # tried again by the next run
    recomputed: int = 0  # tickets whose due times moved with a config change
    digests: list[str] = field(default_factory=list)  # agents whose daily digest was queued


def run(ctx: Context, *, at: dt.datetime | None = None, dry_run: bool = False) -> Report:
    """Carry out (or list) everything due at ``at`` (naive UTC; default now)."""
    now = utcnow()
    at = at or now
    report = Report(at=at, dry_run=dry_run)
    if dry_run:
        _preview(ctx, report)
        return report
    report.recomputed = sla.refresh(ctx.config)
    passed: list[int] = []  # skipped or failed in this run: not taken again by it
    while due := rows.due(at, _BATCH, passed):
        for timer in due:
            try:
                with write_transaction():
                    done = _do(ctx, timer, at, now)
            except TemporaryFailure:
                raise
            except MailgateError as exc:  # e.g. a broken template: nothing recorded
                passed.append(timer.id)
                report.failed.append(f"timer {timer.id} ({timer.kind}): {exc}")
                event(log, "jobs.failed", logging.WARNING, kind=timer.kind, error=str(exc))
                continue
            if done is None:
                passed.append(timer.id)
                report.skipped += 1
                continue
            report.done.append(done)
            event(log, "jobs.done", kind=done.kind, ticket=done.ticket, outcome=done.outcome)
    report.digests = notices.send_digests(ctx, at)  # agents' daily lists of their tickets
    return report


def _do(ctx: Context, timer: rows.TimerRow, at: dt.datetime, now: dt.datetime) -> Done | None:
    ticket = ticket_rows.try_lock(timer.ticket_id)
    if ticket is None:
        return None  # another process works on this ticket now
    claimed = rows.claim(timer.id)
    if claimed is None:
        return None  # done by another process a moment ago
    journal = Journal()
    outcome = ACTIONS[claimed.kind](ctx, ticket, claimed, journal, at)
    rows.mark_done(claimed.id, now, outcome)
    reactions.finish(ctx, journal)
    return Done(
        ticket.number, _tag(ctx, ticket.number), claimed.kind, claimed.key, claimed.due_at, outcome
    )


def _preview(ctx: Context, report: Report) -> None:
    """What a run at ``report.at`` would do, from the stored timers; writes nothing."""
    close_after = sla.settings(ctx.config).resolved_after
    after: tuple[dt.datetime, int] | None = None
    while due := rows.due(report.at, _BATCH, after=after):
        for timer in due:
            after = (timer.due_at, timer.id)
            number = ticket_rows.number_of(timer.ticket_id) or 0
            what = WOULD[timer.kind]
            if timer.kind == "pending_close" and close_after:
                closes = timer.due_at + dt.timedelta(seconds=close_after)
                if closes <= report.at:
                    what += f", then close it ({closes.isoformat(timespec='seconds')}Z)"
            report.done.append(
                Done(number, _tag(ctx, number), timer.kind, timer.key, timer.due_at, what)
            )


def _tag(ctx: Context, number: int) -> str:
    return format_tag(ctx.config.gateway.ticket_prefix, number)


__all__ = ["Done", "Report", "run"]
