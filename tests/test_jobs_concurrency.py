"""Two gateway processes doing the due work at the same time on one PostgreSQL: each notice once."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
from pathlib import Path

import pytest

from mailgate import intake, store
from mailgate.admin import tickets as admin
from mailgate.context import Context
from mailgate.store import models as m
from tests.support import compose

TICKETS = 40


@pytest.mark.postgres
@pytest.mark.config({"lifecycle": {"pending_reminder_after": "1h"}})
def test_two_processes_running_jobs_at_once_send_each_reminder_once(
    ctx: Context, config_path: Path
) -> None:
    assert not store.is_sqlite()
    numbers = []
    for i in range(TICKETS):
        raw = compose(sender=f"customer{i}@customer.example", subject=f"Question {i}")
        outcome = intake.ingest(ctx, raw, source="smtp")
        assert outcome.ticket is not None
        admin.set_status(ctx, outcome.ticket, "pending", "admin:cli")
        numbers.append(outcome.ticket)
    at = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)).isoformat()
    store.close()
    command = [sys.executable, "-m", "mailgate", "--config", str(config_path), "jobs", "run"]
    runs = [
        subprocess.Popen([*command, "--at", at, "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    results = [(run.wait(timeout=120), run.communicate()) for run in runs]
    assert [code for code, _ in results] == [0, 0], results
    import json

    done = [len(json.loads(out)["done"]) for _, (out, _err) in results]
    assert sum(done) == TICKETS
    reminders = [tuple(i.recipients) for i in m.OutboxItem.select().where(m.OutboxItem.notice == "pending_reminder")]
    assert len(reminders) == TICKETS and len(set(reminders)) == TICKETS
    assert m.Event.select().where(m.Event.kind == "pending_reminder").count() == TICKETS
