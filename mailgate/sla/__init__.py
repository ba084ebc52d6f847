"""SLA clocks: calendars, policies, clocks computed from a ticket's history, and their due work.

The front door. ``calendar.py`` does working-time arithmetic in an IANA zone
(weekly ranges, holidays, DST); ``policy.py`` picks a ticket's policy;
``clocks.py`` computes its clocks (and the lifecycle's timers) from its history,
never from "now"; ``react.py`` keeps the stored clocks and timers in step —
``react`` is the line in ``reactions.finish``, ``refresh`` runs at start after a
config change; ``show.py`` is what ``tickets show`` and the list filters read.
The due work itself is carried out by ``mailgate.jobs``.

Imports config, events, the store and the standard library (zoneinfo); never the
notices or the jobs (they import this).
"""

from mailgate.sla.calendar import WorkCalendar, calendars
from mailgate.sla.clocks import Clock, History, compute, history_of
from mailgate.sla.policy import Policy, choose, settings
from mailgate.sla.react import react, recompute, refresh, timer_key
from mailgate.sla.show import describe, local_iso, parse_instant, text_lines

__all__ = [
    "Clock",
    "History",
    "Policy",
    "WorkCalendar",
    "calendars",
    "choose",
    "compute",
    "describe",
    "history_of",
    "local_iso",
    "parse_instant",
    "react",
    "recompute",
    "refresh",
    "settings",
    "text_lines",
    "timer_key",
]
