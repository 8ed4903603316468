"""Tests for the working-day calendar (official Chinese calendar + local config)."""

from __future__ import annotations

import logging
import re
from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sla.calendar import WorkCalendar
from sla.settings import CalendarSettings

# Module-level so hypothesis can reuse it (function-scoped fixtures are not reset between examples).
CAL = WorkCalendar()


def _days(first: date, last: date) -> list[date]:
    return [first + timedelta(n) for n in range((last - first).days + 1)]


# ----- official calendar ------------------------------------------------------------------------


def test_national_day_2025() -> None:
    assert not any(CAL.is_working_day(d) for d in _days(date(2025, 10, 1), date(2025, 10, 8)))
    # Make-up workdays (调休): a Sunday before and a Saturday after the holiday.
    assert date(2025, 9, 28).weekday() == 6 and CAL.is_working_day(date(2025, 9, 28))
    assert date(2025, 10, 11).weekday() == 5 and CAL.is_working_day(date(2025, 10, 11))
    assert CAL.is_working_day(date(2025, 9, 30)) and CAL.is_working_day(date(2025, 10, 9))


def test_spring_festival_2026_matches_published_schedule() -> None:
    off = [d for d in _days(date(2026, 2, 10), date(2026, 3, 2)) if not CAL.is_working_day(d)]
    weekend_workdays = [
        d for d in _days(date(2026, 2, 10), date(2026, 3, 2)) if d.weekday() >= 5 and CAL.is_working_day(d)
    ]
    print("library 2026 spring festival off days:", off, "make-up days:", weekend_workdays)
    assert off == [*_days(date(2026, 2, 15), date(2026, 2, 23)), date(2026, 3, 1)]  # + an ordinary Sunday
    assert weekend_workdays == [date(2026, 2, 14), date(2026, 2, 28)]


def test_is_working_day_accepts_datetime() -> None:
    assert CAL.is_working_day(datetime(2025, 10, 11, 9, 0)) is True
    assert CAL.is_working_day(datetime(2025, 10, 1, 9, 0)) is False


def test_covers() -> None:
    assert CAL.covers(date(2004, 1, 1)) and CAL.covers(date(2026, 12, 31))
    assert not CAL.covers(date(2003, 12, 31)) and not CAL.covers(date(2031, 1, 1))


def test_next_working_day_and_count() -> None:
    assert CAL.next_working_day(date(2025, 9, 30)) == date(2025, 10, 9)
    assert CAL.next_working_day(date(2025, 9, 26)) == date(2025, 9, 28)  # Fri -> make-up Sunday
    # (2025-09-30, 2025-10-12]: 10-09, 10-10, 10-11 work; 10-12 is a normal Sunday.
    assert CAL.working_days_between(date(2025, 9, 30), date(2025, 10, 12)) == 3
    assert CAL.working_days_between(date(2025, 10, 12), date(2025, 9, 30)) == 0
    assert CAL.working_days_between(date(2025, 9, 30), date(2025, 9, 30)) == 0


# ----- config overrides -------------------------------------------------------------------------


def test_config_local_holiday_and_workday() -> None:
    cfg = CalendarSettings(
        extra_holidays=[date(2025, 9, 23)],  # a Tuesday, e.g. a local festival
        extra_workdays=[date(2025, 9, 20), date(2025, 10, 8)],  # a Saturday and a national holiday
    )
    cal = WorkCalendar.from_config(cfg)
    assert CAL.is_working_day(date(2025, 9, 23)) and not cal.is_working_day(date(2025, 9, 23))
    assert not CAL.is_working_day(date(2025, 9, 20)) and cal.is_working_day(date(2025, 9, 20))
    assert cal.is_working_day(date(2025, 10, 8))
    # Deadline from Monday 2025-09-22 with 1 day skips the local holiday.
    assert cal.add_working_days(datetime(2025, 9, 22, 10), 1) == datetime(2025, 9, 24, 17, 30)


def test_config_date_in_both_lists_rejected() -> None:
    with pytest.raises(ValueError, match="2025-09-23"):
        CalendarSettings(extra_holidays=[date(2025, 9, 23)], extra_workdays=[date(2025, 9, 23)])


def test_config_unknown_key_rejected() -> None:
    with pytest.raises(ValueError, match="extra_holiday"):
        CalendarSettings.model_validate({"extra_holiday": ["2025-09-23"]})


def test_config_from_strings_and_periods() -> None:
    cfg = CalendarSettings.model_validate(
        {"extra_holidays": ["2025-09-23"], "working_hours": ["09:00-18:00"]}
    )
    assert cfg.extra_holidays == [date(2025, 9, 23)]
    assert cfg.periods() == [(time(9, 0), time(18, 0))]
    assert CalendarSettings().periods() == [(time(8, 30), time(12, 0)), (time(14, 30), time(17, 30))]


@pytest.mark.parametrize(
    ("hours", "bad", "why"),
    [
        (["8:30-12:00"], "8:30-12:00", "HH:MM-HH:MM"),
        (["08:30~12:00"], "08:30~12:00", "HH:MM-HH:MM"),
        (["25:00-26:00"], "25:00-26:00", "invalid time"),
        (["08:61-09:00"], "08:61-09:00", "invalid time"),
        (["12:00-08:30"], "12:00-08:30", "start before"),
        (["12:00-12:00"], "12:00-12:00", "start before"),
        (["08:30-12:00", "11:00-13:00"], "11:00-13:00", "overlap"),
        (["14:30-17:30", "08:30-12:00"], "08:30-12:00", "sorted"),
        ([], "working_hours", "at least one"),
    ],
)
def test_bad_working_hours(hours: list[str], bad: str, why: str) -> None:
    with pytest.raises(ValueError, match=re.escape(bad)) as info:
        CalendarSettings(working_hours=hours)
    assert why in str(info.value)


# ----- deadlines --------------------------------------------------------------------------------


def test_deadline_crosses_national_day() -> None:
    assert CAL.add_working_days(datetime(2025, 9, 30, 10), 3) == datetime(2025, 10, 11, 17, 30)


def test_deadline_next_day() -> None:
    # Dispatched Monday 10:00 with 1 day -> Tuesday end of day.
    assert CAL.add_working_days(datetime(2025, 9, 22, 10), 1) == datetime(2025, 9, 23, 17, 30)
    # After hours on a working day still counts from the next working day.
    assert CAL.add_working_days(datetime(2025, 9, 22, 21), 1) == datetime(2025, 9, 23, 17, 30)


def test_dispatch_on_holiday_counts_from_next_working_day() -> None:
    assert CAL.add_working_days(datetime(2025, 10, 3, 10), 1) == datetime(2025, 10, 9, 17, 30)
    assert CAL.add_working_days(datetime(2025, 10, 3, 10), 3) == datetime(2025, 10, 11, 17, 30)
    # Ordinary Saturday -> the make-up Sunday 09-28 is day 1.
    assert CAL.add_working_days(datetime(2025, 9, 27, 10), 1) == datetime(2025, 9, 28, 17, 30)


@pytest.mark.parametrize(
    ("start", "expected"),
    [
        (datetime(2025, 9, 22, 7, 0), datetime(2025, 9, 22, 17, 30)),  # before office hours
        (datetime(2025, 9, 22, 10, 0), datetime(2025, 9, 22, 17, 30)),
        (datetime(2025, 9, 22, 17, 29), datetime(2025, 9, 22, 17, 30)),
        (datetime(2025, 9, 22, 17, 30), datetime(2025, 9, 23, 17, 30)),  # at the end: next day
        (datetime(2025, 9, 22, 20, 0), datetime(2025, 9, 23, 17, 30)),
        (datetime(2025, 10, 1, 10, 0), datetime(2025, 10, 9, 17, 30)),  # holiday
    ],
)
def test_zero_days(start: datetime, expected: datetime) -> None:
    assert CAL.add_working_days(start, 0) == expected


def test_negative_days_rejected() -> None:
    with pytest.raises(ValueError, match="-1"):
        CAL.add_working_days(datetime(2025, 9, 22, 10), -1)


def test_deadline_uses_configured_end_of_day() -> None:
    cal = WorkCalendar(CalendarSettings(working_hours=["09:00-18:00"]))
    assert cal.end_of_day == time(18, 0)
    assert cal.add_working_days(datetime(2025, 9, 22, 10), 1) == datetime(2025, 9, 23, 18, 0)


def test_result_stays_naive() -> None:
    assert CAL.add_working_days(datetime(2025, 9, 22, 10), 2).tzinfo is None


# ----- elapsed working time ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        # within one morning period
        (datetime(2025, 9, 22, 9, 0), datetime(2025, 9, 22, 11, 0), timedelta(hours=2)),
        # across lunch: 11:00-12:00 + 14:30-15:00
        (datetime(2025, 9, 22, 11, 0), datetime(2025, 9, 22, 15, 0), timedelta(hours=1, minutes=30)),
        # entirely inside lunch / after hours
        (datetime(2025, 9, 22, 12, 10), datetime(2025, 9, 22, 14, 0), timedelta(0)),
        (datetime(2025, 9, 22, 18, 0), datetime(2025, 9, 23, 8, 0), timedelta(0)),
        # across a weekend: Fri 16:30-17:30 + Mon 08:30-09:30
        (datetime(2025, 9, 19, 16, 30), datetime(2025, 9, 22, 9, 30), timedelta(hours=2)),
        # across National Day: 09-30 17:00-17:30 + 10-09 08:30-09:00
        (datetime(2025, 9, 30, 17, 0), datetime(2025, 10, 9, 9, 0), timedelta(hours=1)),
        # a full working day
        (datetime(2025, 9, 22, 0, 0), datetime(2025, 9, 23, 0, 0), timedelta(hours=6, minutes=30)),
        # b <= a
        (datetime(2025, 9, 22, 11, 0), datetime(2025, 9, 22, 9, 0), timedelta(0)),
        (datetime(2025, 9, 22, 11, 0), datetime(2025, 9, 22, 11, 0), timedelta(0)),
    ],
)
def test_working_time_between(a: datetime, b: datetime, expected: timedelta) -> None:
    assert CAL.working_time_between(a, b) == expected


def test_working_time_over_years_matches_day_count() -> None:
    a, b = datetime(2015, 1, 1), datetime(2026, 1, 1)
    n_days = CAL.working_days_between(date(2014, 12, 31), date(2025, 12, 31))
    assert CAL.working_time_between(a, b) == n_days * timedelta(hours=6, minutes=30)


# ----- years beyond the library's data ----------------------------------------------------------


def test_uncovered_year_falls_back_to_weekdays_and_warns_once(caplog: pytest.LogCaptureFixture) -> None:
    cal = WorkCalendar()
    caplog.set_level(logging.WARNING, logger="sla.calendar")
    assert cal.uncovered_years() == set()
    # 2031-01-01 is a Wednesday: the fallback ignores New Year's Day (no data), weekends are off.
    assert cal.is_working_day(date(2031, 1, 1))
    assert not cal.is_working_day(date(2031, 1, 4)) and not cal.is_working_day(date(2031, 1, 5))
    for day in _days(date(2031, 1, 1), date(2031, 12, 31)):
        cal.is_working_day(day)
    cal.add_working_days(datetime(2031, 3, 3, 9), 10)
    cal.working_time_between(datetime(2031, 1, 1), datetime(2031, 6, 1))
    records = [r for r in caplog.records if r.name == "sla.calendar"]
    assert len(records) == 1
    assert records[0].levelno == logging.WARNING and "2031" in records[0].getMessage()
    assert cal.uncovered_years() == {2031}
    assert not cal.covers(date(2031, 6, 1))


def test_uncovered_year_still_honours_config(caplog: pytest.LogCaptureFixture) -> None:
    cal = WorkCalendar(CalendarSettings(extra_holidays=[date(2031, 1, 1)]))
    caplog.set_level(logging.WARNING, logger="sla.calendar")
    assert not cal.is_working_day(date(2031, 1, 1))
    assert cal.uncovered_years() == set()  # config answered; the fallback was not needed
    assert cal.is_working_day(date(2031, 1, 2))
    assert cal.uncovered_years() == {2031}


# ----- property ---------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    start=st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 12, 31, 23, 59)),
    days=st.integers(min_value=1, max_value=15),
)
def test_deadline_property(start: datetime, days: int) -> None:
    result = CAL.add_working_days(start, days)
    assert result.tzinfo is None
    assert CAL.is_working_day(result.date())
    assert result.time() == CAL.end_of_day == time(17, 30)
    assert result > start
    # Day 1 is the first working day after the start date, so (start, result] holds exactly `days`
    # working days -- this holds whether or not start itself is a working day.
    assert CAL.working_days_between(start.date(), result.date()) == days


def test_a_year_the_library_does_not_cover_is_warned_about_with_what_to_do() -> None:
    from sla.calendar import coverage_warnings

    calendar = WorkCalendar(CalendarSettings())
    assert coverage_warnings(calendar, date(2025, 6, 1)) == []  # 2025 and 2026 are official
    (warning,) = coverage_warnings(calendar, date(2026, 11, 16))
    assert "2027" in warning and "工作日历" in warning and "周一至周五" in warning
    assert len(coverage_warnings(calendar, date(2027, 3, 1))) == 2  # this year and the next
    calendar.set_local_overrides({date(2027, 1, 1)}, set())
    (warning,) = coverage_warnings(calendar, date(2026, 11, 16))
    assert "已录入本地调整 1 天" in warning
