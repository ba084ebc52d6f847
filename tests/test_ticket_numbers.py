"""Sequential ticket numbers: the first is `gateway.first_ticket_number`, none is given twice."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from mailgate import store
from mailgate.context import Context
from mailgate.intake import ingest
from mailgate.store import models as m
from tests.conftest import open_gateway
from tests.support import compose, config_data, load_config, write_config


def new_tickets(ctx: Context, count: int, start: int = 0) -> list[int | None]:
    return [
        ingest(ctx, compose(subject=f"n{start + i}"), source="pipe").ticket for i in range(count)
    ]


@pytest.mark.config({"gateway": {"ticket_numbers": "sequential", "first_ticket_number": 42}})
def test_sequential_numbers_start_at_first_ticket_number(ctx: Context) -> None:
    assert new_tickets(ctx, 3) == [42, 43, 44]


def test_raising_first_ticket_number_later_jumps_lowering_it_never_reuses(
    tmp_path: Path, database_url: str
) -> None:
    def gateway(first: int) -> Context:
        store.close()
        data = config_data(
            tmp_path,
            database_url,
            {"gateway": {"ticket_numbers": "sequential", "first_ticket_number": first}},
        )
        return open_gateway(load_config(write_config(tmp_path / "mailgate.toml", data)))

    assert new_tickets(gateway(1000), 2) == [1000, 1001]
    assert new_tickets(gateway(5000), 2, start=2) == [5000, 5001]
    assert new_tickets(gateway(1), 1, start=4) == [5002]
    store.close()


@pytest.mark.parametrize("value", [0, -5, "1000"])
def test_a_bad_first_ticket_number_is_a_config_error(tmp_path: Path, value: object) -> None:
    data = config_data(tmp_path, "sqlite:///x.db", {"gateway": {"first_ticket_number": value}})
    path = write_config(tmp_path / "c.toml", data)
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(path), "check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 78
    assert "gateway.first_ticket_number: must be" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.config({"gateway": {"ticket_numbers": "sequential", "first_ticket_number": 42}})
def test_a_number_already_taken_is_passed_over(ctx: Context) -> None:
    """The INSERT tries the number itself (no lookup first): one taken meanwhile (here by
    an admin's renumbering) is skipped, never a failed mail."""
    assert new_tickets(ctx, 1) == [42]
    m.Ticket.update(number=43).where(m.Ticket.number == 42).execute()
    assert new_tickets(ctx, 2, start=1) == [44, 45]
