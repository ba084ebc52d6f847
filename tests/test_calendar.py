"""Working time in calendars, and the clocks of a ticket computed from its history (pure).

The office calendar of the example config: Monday to Friday 08:00-12:30 and 13:30-18:00
in Europe/Berlin, Christmas a holiday.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import zoneinfo
from pathlib import Path

import pytest

from mailgate.config.calendars import parse_duration
from mailgate.errors import ConfigError
from mailgate.sla.calendar import WorkCalendar
from mailgate.sla.clocks import compute, history_of, lifecycle_timers
from tests.support import config_data, load_config, write_config

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
OFFICE_DAY = ((8 * 60, 12 * 60 + 30), (13 * 60 + 30, 18 * 60))
OFFICE = WorkCalendar(
    "office", "Europe/Berlin", (OFFICE_DAY,) * 5 + ((), ()), frozenset({dt.date(2026, 12, 25)})
)
AROUND_THE_CLOCK_BERLIN = WorkCalendar("24x7", "Europe/Berlin", (((0, 1440),),) * 7)


def berlin(*args: int) -> dt.datetime:
    """A Berlin wall-clock time as the naive UTC instant mailgate stores."""
    return dt.datetime(*args, tzinfo=BERLIN).astimezone(dt.UTC).replace(tzinfo=None)


def local(instant: dt.datetime) -> str:
    return instant.replace(tzinfo=dt.UTC).astimezone(BERLIN).strftime("%a %Y-%m-%d %H:%M %Z")


def due(start: dt.datetime, duration: str, calendar: WorkCalendar = OFFICE) -> str:
    return local(calendar.add_duration(start, parse_duration(duration)))


def test_friday_1730_plus_eight_business_hours_is_due_monday_afternoon() -> None:
    friday = berlin(2026, 11, 20, 17, 30)
    assert due(friday, "8h") == "Mon 2026-11-23 16:30 CET"
    assert due(friday, "30m") == "Fri 2026-11-20 18:00 CET"  # the end of the range itself
    assert due(friday, "4h") == "Mon 2026-11-23 11:30 CET"


def test_a_due_time_on_the_end_of_a_range_is_that_instant_not_after_lunch() -> None:
    assert due(berlin(2026, 11, 23, 10, 0), "2h30m") == "Mon 2026-11-23 12:30 CET"
    assert due(berlin(2026, 11, 23, 10, 0), "2h31m") == "Mon 2026-11-23 13:31 CET"


def test_days_are_the_same_working_minute_so_many_working_days_later() -> None:
    assert due(berlin(2026, 11, 23, 10, 0), "2d") == "Wed 2026-11-25 10:00 CET"
    assert due(berlin(2026, 11, 20, 10, 0), "1d") == "Mon 2026-11-23 10:00 CET"  # over a weekend
    # Saturday counts from the next working minute: Monday 08:00.
    assert due(berlin(2026, 11, 21, 10, 0), "2d") == "Wed 2026-11-25 08:00 CET"
    assert due(berlin(2026, 11, 23, 10, 0), "1d2h") == "Tue 2026-11-24 12:00 CET"


def test_holidays_and_weekends_do_not_count() -> None:
    # Thursday 24 Dec 17:00 + 2h: one hour that day, Christmas, the weekend, then Monday.
    assert due(berlin(2026, 12, 24, 17, 0), "2h") == "Mon 2026-12-28 09:00 CET"
    assert due(berlin(2026, 12, 23, 10, 0), "2d") == "Mon 2026-12-28 10:00 CET"
    friday, monday = berlin(2026, 11, 20, 17, 0), berlin(2026, 11, 23, 9, 0)
    assert OFFICE.working_seconds(friday, monday) == 2 * 3600


def test_dst_spring_forward_and_fall_back_in_berlin() -> None:
    # 24x7 in Berlin: "1d" is the same wall-clock minute the next day — 23 or 25 real hours.
    spring = berlin(2026, 3, 28, 10, 0)
    assert local(AROUND_THE_CLOCK_BERLIN.add_days(spring, 1)) == "Sun 2026-03-29 10:00 CEST"
    assert AROUND_THE_CLOCK_BERLIN.add_days(spring, 1) - spring == dt.timedelta(hours=23)
    fall = berlin(2026, 10, 24, 10, 0)
    assert AROUND_THE_CLOCK_BERLIN.add_days(fall, 1) - fall == dt.timedelta(hours=25)
    # Hours are real working time: 24 h over the night the clocks go back end at 09:00.
    assert local(AROUND_THE_CLOCK_BERLIN.add(fall, 24 * 3600)) == "Sun 2026-10-25 09:00 CET"
    # Office hours keep their wall-clock times across the change.
    assert due(berlin(2026, 3, 27, 17, 0), "2h") == "Mon 2026-03-30 09:00 CEST"
    assert due(berlin(2026, 10, 23, 17, 0), "2h") == "Mon 2026-10-26 09:00 CET"


def test_working_seconds_and_add_agree() -> None:
    start = berlin(2026, 11, 19, 16, 45)
    for seconds in (60, 3600, 5 * 3600, 8 * 3600, 40 * 3600, 41 * 3600 + 17):
        end = OFFICE.add(start, seconds)
        assert OFFICE.working_seconds(start, end) == seconds


def history(*events: tuple[str, str, str, dt.datetime], created: dt.datetime) -> object:
    return history_of(created, list(events))


def clocks_of(rows: list[tuple[str, str, str, dt.datetime]], created: dt.datetime) -> dict[str, object]:
    durations = {n: parse_duration(d) for n, d in (("first_response", "2h"), ("next_response", "4h"), ("resolution", "8h"))}
    found = compute(history_of(created, rows), OFFICE, durations, 0.8)
    return {c.name: c for c in found}


def test_a_clock_pauses_while_pending_and_resumes_when_the_customer_answers() -> None:
    created = berlin(2026, 11, 23, 9, 0)
    rows = [
        ("status", "new", "pending", berlin(2026, 11, 23, 10, 0)),
        ("status", "pending", "open", berlin(2026, 11, 24, 10, 0)),
    ]
    clock = clocks_of(rows, created)["resolution"]
    # 1 h before pending, the remaining 7 h from Tuesday 10:00 (lunch excluded).
    assert local(clock.due_at) == "Tue 2026-11-24 18:00 CET"  # type: ignore[attr-defined]
    paused = clocks_of(rows[:1], created)["resolution"]
    assert paused.paused and paused.due_at is None and paused.remaining_seconds == 7 * 3600  # type: ignore[attr-defined]


def test_first_response_is_met_by_an_agent_reply_not_by_a_note() -> None:
    created = berlin(2026, 11, 23, 9, 0)
    note = [("note", "", "", berlin(2026, 11, 23, 9, 30))]
    assert clocks_of(note, created)["first_response"].met_at is None  # type: ignore[attr-defined]
    reply = [("agent_reply", "", "", berlin(2026, 11, 23, 9, 45))]
    first = clocks_of(reply, created)["first_response"]
    assert first.met_at == berlin(2026, 11, 23, 9, 45) and not first.breached(berlin(2026, 11, 30, 0, 0))  # type: ignore[attr-defined]


def test_a_reopen_resumes_the_resolution_clock_where_it_stood() -> None:
    created = berlin(2026, 11, 23, 9, 0)
    rows = [
        ("status", "new", "resolved", berlin(2026, 11, 23, 12, 0)),  # 3 h used
        ("reopened", "resolved", "open", berlin(2026, 11, 25, 8, 0)),
    ]
    clock = clocks_of(rows, created)["resolution"]
    assert clock.met_at is None  # type: ignore[attr-defined]
    # 5 h left: 08:00-12:30, then half an hour after lunch.
    assert local(clock.due_at) == "Wed 2026-11-25 14:00 CET"  # type: ignore[attr-defined]
    resolved = clocks_of(rows[:1], created)["resolution"]
    assert resolved.met_at == berlin(2026, 11, 23, 12, 0)  # type: ignore[attr-defined]


def test_next_response_runs_from_each_unanswered_customer_message() -> None:
    created = berlin(2026, 11, 23, 9, 0)
    rows = [
        ("agent_reply", "", "", berlin(2026, 11, 23, 9, 30)),
        ("message", "", "customer", berlin(2026, 11, 23, 10, 0)),
        ("message", "", "customer", berlin(2026, 11, 23, 11, 0)),  # still the 10:00 cycle
    ]
    clock = clocks_of(rows, created)["next_response"]
    assert local(clock.due_at) == "Mon 2026-11-23 15:00 CET"  # type: ignore[attr-defined]
    answered = clocks_of([*rows, ("agent_reply", "", "", berlin(2026, 11, 23, 16, 0))], created)
    assert answered["next_response"].breached(berlin(2026, 11, 24, 0, 0))  # type: ignore[attr-defined]


def test_pending_and_resolved_timers_are_wall_clock_from_entering_the_status() -> None:
    created = dt.datetime(2026, 11, 23, 9, 0)
    pending = history_of(created, [("status", "open", "pending", dt.datetime(2026, 11, 23, 10, 0))])
    wanted = lifecycle_timers(pending, reminder_after=3 * 86400, close_after=7 * 86400, resolved_after=5 * 86400)
    assert [(k, d) for k, _, d in wanted] == [
        ("pending_reminder", dt.datetime(2026, 11, 26, 10, 0)),
        ("pending_close", dt.datetime(2026, 11, 30, 10, 0)),
    ]


@pytest.mark.parametrize(
    ("calendar", "error"),
    [
        ({"key": "c", "mon": ["08:00-12:30", "12:00-14:00"]}, "calendar[0].mon[1]: '12:00-14:00' overlaps '08:00-12:30'"),
        ({"key": "c", "tue": "18:00-08:00"}, "calendar[0].tue[0]: '18:00-08:00' ends before it starts"),
        ({"key": "c", "wed": ["25:00-26:00"]}, "calendar[0].wed[0]: '25:00-26:00': no such time of day"),
        ({"key": "c", "mon": "08:00-12:00", "timezone": "Europe/Berln"}, "calendar[0].timezone: unknown time zone"),
        ({"key": "c", "mon": "08:00-12:00", "holidays": ["2026-13-01"]}, "calendar[0].holidays[0]"),
        ({"key": "c"}, "calendar[0]: no working hours on any day"),
    ],
)
def test_impossible_calendars_are_refused_naming_key_and_file(
    tmp_path: Path, calendar: dict[str, object], error: str
) -> None:
    data = config_data(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", {"calendar": [calendar]})
    path = write_config(tmp_path / "mailgate.toml", data)
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    assert error in str(raised.value) and str(path) in str(raised.value)


def test_check_refuses_an_sla_with_an_unknown_calendar(tmp_path: Path) -> None:
    sla = {"key": "normal", "calendar": "office", "resolution": "8h"}
    data = config_data(tmp_path, f"sqlite:///{tmp_path / 'x.db'}", {"sla": [sla]})
    path = write_config(tmp_path / "mailgate.toml", data)
    done = subprocess.run(
        [sys.executable, "-m", "mailgate", "--config", str(path), "check"],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 78
    assert done.stderr.strip() == (
        f"mailgate: config error: sla[0].calendar: no [[calendar]] with key 'office' (in {path})"
    )
