"""Cron lines (`0 2 * * *`) as APScheduler 3 triggers, checked when a pipeline file is loaded and
used by its schedule."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

CRON_HELP = "a cron line such as '0 2 * * *' (minute hour day month weekday)"
WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_trigger(expression: str, timezone=None):
    """A CronTrigger for a standard 5-field crontab line. Weekday numbers follow cron (0 and 7 are
    Sunday); APScheduler 3 counts from Monday, so numbers are written as day names first."""
    from apscheduler.triggers.cron import CronTrigger

    if not isinstance(expression, str):
        raise ValueError("expected a string")
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"{len(fields)} fields, expected 5")
    minute, hour, day, month, weekday = fields
    trigger = CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=_cron_weekdays(weekday),
                          timezone=timezone)
    now = datetime.now(trigger.timezone)
    if trigger.get_next_fire_time(None, now) is None:  # e.g. '0 0 31 2 *': no February has a 31st
        raise ValueError("it never fires (no date matches its day, month and weekday)")
    return trigger


def _cron_weekdays(field: str) -> str:
    terms = []
    for term in field.split(","):
        match = re.fullmatch(r"(\*|\d+)(?:-(\d+))?(?:/(\d+))?", term)
        if not match or (match.group(1) == "*" and not match.group(3)):
            terms.append(term)  # '*', names ('mon-fri'): the same in both conventions
            continue
        first = 0 if match.group(1) == "*" else int(match.group(1))
        last = 6 if match.group(1) == "*" else int(match.group(2) or first)
        step = int(match.group(3) or 1)
        if not (0 <= first <= 7 and 0 <= last <= 7 and first <= last and step >= 1):
            raise ValueError(f"weekday {term!r}: numbers 0-7 (0 and 7 are Sunday)")
        terms.extend(WEEKDAYS[d % 7] for d in range(first, last + 1, step))
    return ",".join(dict.fromkeys(terms))


def check_cron(value: Any, fail) -> None:
    try:
        cron_trigger(value)
    except ValueError as exc:
        raise fail(f"{value!r}: {exc}; {CRON_HELP}") from None


def describe_trigger(trigger) -> str:
    from apscheduler.triggers.cron import CronTrigger

    if isinstance(trigger, CronTrigger):
        fields = {f.name: str(f) for f in trigger.fields}
        return " ".join(fields[n] for n in ("minute", "hour", "day", "month", "day_of_week"))
    return str(trigger)
