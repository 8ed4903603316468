"""Working-day calendar for ticket deadlines: official Chinese calendar plus local config overrides."""

from __future__ import annotations

import datetime
import logging
import threading

import chinese_calendar

from sla.settings import CalendarSettings

logger = logging.getLogger("sla.calendar")

_ONE_DAY = datetime.timedelta(days=1)


def _as_date(day: datetime.date) -> datetime.date:
    # datetime is a subclass of date but never equals/hashes like one, which would split the cache.
    return day.date() if isinstance(day, datetime.datetime) else day


class WorkCalendar:
    """Answers "is this a working day" and computes deadlines / elapsed working time.

    The settings are snapshotted at construction; build a new calendar after a config reload.
    """

    def __init__(self, settings: CalendarSettings | None = None) -> None:
        self.settings = settings if settings is not None else CalendarSettings()
        self._extra_off = frozenset(self.settings.extra_holidays)
        self._extra_on = frozenset(self.settings.extra_workdays)
        self._periods = self.settings.periods()
        self._end_of_day = self._periods[-1][1]
        self._day_length = sum(
            (self._combine_delta(start, end) for start, end in self._periods), datetime.timedelta()
        )
        # Hot loops call is_working_day for the same dates over and over: cache per date.
        self._day_cache: dict[datetime.date, bool] = {}
        self._year_covered: dict[int, bool] = {}
        self._uncovered: set[int] = set()
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, settings: CalendarSettings) -> WorkCalendar:
        return cls(settings)

    def set_local_overrides(self, holidays: set[datetime.date], workdays: set[datetime.date]) -> None:
        """Merge the overrides kept in the database (admin page) with those of the config file;
        a date in the database wins over the same date in the config file."""
        off = (set(self.settings.extra_holidays) - workdays) | holidays
        on = (set(self.settings.extra_workdays) - holidays) | workdays
        with self._lock:
            self._extra_off, self._extra_on = frozenset(off), frozenset(on)
            self._day_cache = {}

    @staticmethod
    def _combine_delta(start: datetime.time, end: datetime.time) -> datetime.timedelta:
        anchor = datetime.date.min
        return datetime.datetime.combine(anchor, end) - datetime.datetime.combine(anchor, start)

    @property
    def end_of_day(self) -> datetime.time:
        """The time a deadline falls at: the end of the last working-hours period."""
        return self._end_of_day

    @property
    def working_day_length(self) -> datetime.timedelta:
        return self._day_length

    # ----- working days -------------------------------------------------------------------------

    def covers(self, day: datetime.date) -> bool:
        """True when the chinese_calendar library has official data for the year of ``day``."""
        year = _as_date(day).year
        covered = self._year_covered.get(year)
        if covered is None:
            try:
                chinese_calendar.is_workday(datetime.date(year, 1, 1))
                covered = True
            except NotImplementedError:
                covered = False
            self._year_covered[year] = covered
        return covered

    def local_days(self) -> frozenset[datetime.date]:
        """The days set locally (config and the admin page), off or on."""
        return self._extra_off | self._extra_on

    def uncovered_years(self) -> set[int]:
        """Years for which a Monday-Friday fallback was actually used (for a dashboard warning)."""
        with self._lock:
            return set(self._uncovered)

    def is_working_day(self, day: datetime.date) -> bool:
        day = _as_date(day)
        cached = self._day_cache.get(day)
        if cached is None:
            cached = self._day_cache[day] = self._compute_is_working_day(day)
        return cached

    def _compute_is_working_day(self, day: datetime.date) -> bool:
        # Local config wins over the national calendar (e.g. a city-only holiday).
        if day in self._extra_off:
            return False
        if day in self._extra_on:
            return True
        if self.covers(day):
            return bool(chinese_calendar.is_workday(day))
        self._note_uncovered(day.year)
        return day.weekday() < 5

    def _note_uncovered(self, year: int) -> None:
        # One warning per year, not per call: the fallback is hit for every day of that year.
        with self._lock:
            if year in self._uncovered:
                return
            self._uncovered.add(year)
        logger.warning(
            "chinese_calendar has no holiday data for %d; treating Monday-Friday as working days "
            "(upgrade chinesecalendar or add extra_holidays/extra_workdays to the config)",
            year,
        )

    def next_working_day(self, day: datetime.date) -> datetime.date:
        """The first working day strictly after ``day``."""
        day = _as_date(day) + _ONE_DAY
        while not self.is_working_day(day):
            day += _ONE_DAY
        return day

    def working_days_between(self, a: datetime.date, b: datetime.date) -> int:
        """Number of working days in the half-open interval (a, b]; 0 when b <= a."""
        day, last = _as_date(a) + _ONE_DAY, _as_date(b)
        count = 0
        while day <= last:
            count += self.is_working_day(day)
            day += _ONE_DAY
        return count

    # ----- deadlines and elapsed time -----------------------------------------------------------

    def add_working_days(self, start: datetime.datetime, days: int) -> datetime.datetime:
        """Deadline at the end of the ``days``-th working day after ``start`` (naive local time).

        Day 1 is the first working day after start's date, whether or not start is a working day.
        ``days == 0`` means end of today if start is on a working day before its end, else end of
        the next working day.
        """
        if days < 0:
            raise ValueError(f"days must be >= 0, got {days}")
        day = start.date()
        if days == 0:
            if self.is_working_day(day) and start.time() < self._end_of_day:
                return datetime.datetime.combine(day, self._end_of_day)
            days = 1
        for _ in range(days):
            day = self.next_working_day(day)
        return datetime.datetime.combine(day, self._end_of_day)

    def _working_time_on(
        self, day: datetime.date, lo: datetime.datetime, hi: datetime.datetime
    ) -> datetime.timedelta:
        """Working time of ``day`` that lies inside [lo, hi]."""
        total = datetime.timedelta()
        if not self.is_working_day(day):
            return total
        for start, end in self._periods:
            overlap = min(hi, datetime.datetime.combine(day, end)) - max(
                lo, datetime.datetime.combine(day, start)
            )
            if overlap > datetime.timedelta():
                total += overlap
        return total

    def working_time_between(self, a: datetime.datetime, b: datetime.datetime) -> datetime.timedelta:
        """Working time (inside working-hours periods of working days) from a to b; 0 if b <= a."""
        if b <= a:
            return datetime.timedelta()
        first, last = a.date(), b.date()
        if first == last:
            return self._working_time_on(first, a, b)
        # Partial first and last days; every day in between counts in full if it is a working day.
        total = self._working_time_on(first, a, b) + self._working_time_on(last, a, b)
        total += self._day_length * self.working_days_between(first, last - _ONE_DAY)
        return total

    def add_working_time(self, start: datetime.datetime, amount: datetime.timedelta) -> datetime.datetime:
        """The moment when `amount` of working time has passed after `start` (for "due within" warnings)."""
        remaining, day = amount, start.date()
        while True:
            if self.is_working_day(day):
                for period_start, period_end in self._periods:
                    lo = max(start, datetime.datetime.combine(day, period_start))
                    hi = datetime.datetime.combine(day, period_end)
                    if hi <= lo:
                        continue
                    if hi - lo >= remaining:
                        return lo + remaining
                    remaining -= hi - lo
            day += _ONE_DAY


def coverage_warnings(calendar: WorkCalendar, today: datetime.date) -> list[str]:
    """Warnings for the screens (in Chinese) when this year or the next has no official holiday data
    in the calendar library, so its deadlines are counted Monday to Friday; with how to add them."""
    warnings = []
    for year in (today.year, today.year + 1):
        if calendar.covers(datetime.date(year, 1, 1)):
            continue
        local = sum(1 for d in calendar.local_days() if d.year == year)
        entered = f"已录入本地调整 {local} 天；" if local else ""
        library = f"系统日历库只含 {_last_covered_year()} 年及以前的官方安排"
        warnings.append(
            f"工作日历缺少 {year} 年的国家法定节假日和调休数据（{library}），{entered}"
            "未录入的日子按周一至周五上班计算，办理时限可能算错。"
            f"国务院办公厅公布 {year} 年放假安排后，请管理员在「系统管理 → 工作日历」逐日录入"
            "放假日和调休上班日，或请运维人员升级日历库后重启服务。"
        )
    return warnings


def _last_covered_year() -> int:
    return max(day.year for day in chinese_calendar.holidays)
