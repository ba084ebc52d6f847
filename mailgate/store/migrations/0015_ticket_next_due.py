"""0015 — each ticket's next due time on the ticket, indexed (issue 15: the desk's sorts).

``ticket.next_due_at``: when the ticket's next running SLA clock runs out (the
earliest ``due_at`` of its clocks neither met nor paused; NULL: none runs). The desk
and the API sort by it ("due"); computing it per ticket with a subquery cost 1.2 s
for a list of 100,000 resolved tickets, since no index can order by a subquery.
It is kept by ``store.sla.replace_clocks`` — the one writer of the clocks — in the
same transaction, so it never disagrees with them. The backfill computes it from
the clocks stored before this migration. The index orders the "due" sort and
finds the tickets without a running clock (``IS NULL``) in id order.
"""

from __future__ import annotations

from typing import Any


def apply(db: Any, dialect: str) -> None:
    kind = "TIMESTAMP" if dialect == "postgresql" else "DATETIME"
    db.execute_sql(f'ALTER TABLE "ticket" ADD COLUMN "next_due_at" {kind}')
    db.execute_sql(
        'UPDATE "ticket" SET "next_due_at" = ('
        'SELECT MIN(c."due_at") FROM "sla_clock" c WHERE c."ticket_id" = "ticket"."id"'
        ' AND c."met_at" IS NULL AND NOT c."paused")'
        ' WHERE "id" IN (SELECT "ticket_id" FROM "sla_clock")'
    )
    db.execute_sql('CREATE INDEX IF NOT EXISTS "ticket_next_due_at" ON "ticket" ("next_due_at")')
