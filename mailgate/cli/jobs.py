"""``mailgate jobs run [--at TIME] [--dry-run]``: everything that falls due, as serve runs it.

Thin over ``mailgate.jobs.run`` — the code serve's scheduled job runs every
``jobs.due_seconds``. ``--at`` carries out what is due as if the clock showed
TIME; ``--dry-run`` only prints what would happen.
"""

from __future__ import annotations

import argparse

from mailgate.cli.common import EX_OK, Subparsers, command, context, group, print_json
from mailgate.errors import UsageError

ORDER = 45


def register(sub: Subparsers) -> None:
    j = group(
        sub, "jobs", "due work: SLA warnings and breaches, reminders, auto-resolve, auto-close"
    )
    p = command(j, "run", _jobs_run, "carry out everything due now (or at --at TIME)")
    p.add_argument(
        "--at",
        metavar="TIME",
        help="as if the clock showed TIME (ISO 8601; without an offset in gateway.timezone)",
    )
    p.add_argument("--dry-run", action="store_true", help="only print what would happen")
    p.add_argument("--json", action="store_true")


def _jobs_run(args: argparse.Namespace) -> int:
    from mailgate import jobs, sla

    ctx = context(args)
    at = None
    if args.at:
        try:
            at = sla.parse_instant(args.at, ctx.config.gateway.timezone)
        except ValueError as exc:
            raise UsageError(f"--at: {exc}") from None
    report = jobs.run(ctx, at=at, dry_run=args.dry_run)
    if args.json:
        print_json(
            {
                "at": report.at.isoformat(timespec="seconds") + "Z",
                "dry_run": report.dry_run,
                "done": [
                    {
                        "ticket": d.ticket,
                        "kind": d.kind,
                        "key": d.key,
                        "due": d.due_at.isoformat(timespec="seconds") + "Z",
                        "outcome": d.outcome,
                    }
                    for d in report.done
                ],
                "skipped": report.skipped,
                "failed": report.failed,
                "recomputed": report.recomputed,
                "digests": report.digests,
            }
        )
        return EX_OK
    for done in report.done:
        print(done.line())
    for failure in report.failed:
        print(f"failed (tried again next run): {failure}")
    for agent in report.digests:
        print(f"daily digest queued for {agent}")
    verb = "would be done" if report.dry_run else "done"
    extra = f", {report.skipped} left to another process" if report.skipped else ""
    moved = f"; due times recomputed on {report.recomputed} ticket(s)" if report.recomputed else ""
    print(f"{len(report.done)} {verb} at {report.at.isoformat(timespec='seconds')}Z{extra}{moved}")
    return EX_OK
