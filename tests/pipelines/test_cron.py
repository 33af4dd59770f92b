"""Cron lines as APScheduler triggers."""

from __future__ import annotations

from datetime import datetime, timedelta


def test_weekday_numbers_follow_cron_where_sunday_is_0():
    from workbench.pipelines.cron import cron_trigger

    monday = datetime(2026, 1, 5, 12, 0).astimezone()
    for expression, weekday in (("0 2 * * 0", 6), ("0 2 * * 7", 6), ("0 2 * * 1", 0), ("0 2 * * 6", 5)):
        fire = cron_trigger(expression).get_next_fire_time(None, monday)
        assert fire.weekday() == weekday, expression
    workdays = cron_trigger("0 2 * * 1-5")
    fires, previous = [], None
    for _ in range(7):
        previous = workdays.get_next_fire_time(previous, previous or monday)
        fires.append(previous.weekday())
        previous += timedelta(seconds=1)
    assert sorted(set(fires)) == [0, 1, 2, 3, 4]


def test_a_cron_line_that_never_fires_is_refused():
    import pytest

    from workbench.pipelines.cron import check_cron

    check_cron("0 0 29 2 *", ValueError)  # leap years only: it does fire
    for never in ("0 0 31 2 *", "0 0 30 2 *", "0 0 31 4,6,9,11 *"):
        with pytest.raises(ValueError, match="never fires"):
            check_cron(never, ValueError)
