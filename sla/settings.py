"""Configuration of the working-day calendar (local holidays, make-up days, office hours)."""

from __future__ import annotations

import datetime
import re
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from core.settings import Section

# Strict "HH:MM-HH:MM": a typo in office hours silently shifts every deadline, so reject rather than guess.
_PERIOD_RE = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")

Period = tuple[datetime.time, datetime.time]


def parse_period(text: str) -> Period:
    """Parse one "HH:MM-HH:MM" working-hours period; raise ValueError naming the value and the reason."""
    match = _PERIOD_RE.match(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"working_hours entry {text!r} is not of the form 'HH:MM-HH:MM'")
    sh, sm, eh, em = (int(g) for g in match.groups())
    try:
        start, end = datetime.time(sh, sm), datetime.time(eh, em)
    except ValueError as exc:
        raise ValueError(f"working_hours entry {text!r} has an invalid time: {exc}") from None
    if start >= end:
        raise ValueError(f"working_hours entry {text!r} does not start before it ends")
    return start, end


class CalendarSettings(BaseModel):
    """Local overrides on top of the official Chinese calendar, plus the office hours of a working day."""

    model_config = ConfigDict(extra="forbid")

    extra_holidays: list[datetime.date] = []
    extra_workdays: list[datetime.date] = []
    working_hours: list[str] = ["08:30-12:00", "14:30-17:30"]

    @field_validator("working_hours")
    @classmethod
    def _check_working_hours(cls, value: list[str]) -> list[str]:
        if not value:
            # The deadline is "end of the last period", so at least one period is required.
            raise ValueError("working_hours must contain at least one 'HH:MM-HH:MM' period")
        previous: tuple[str, Period] | None = None
        for text in value:
            period = parse_period(text)
            if previous is not None and period[0] < previous[1][1]:
                raise ValueError(
                    f"working_hours entry {text!r} starts before the previous entry {previous[0]!r} ends "
                    "(periods must be sorted and must not overlap)"
                )
            previous = (text, period)
        return [text.strip() for text in value]

    @field_validator("extra_workdays")
    @classmethod
    def _check_no_conflict(cls, value: list[datetime.date], info: ValidationInfo) -> list[datetime.date]:
        # extra_holidays is declared first, so it is already validated here (absent if it failed).
        holidays = set(info.data.get("extra_holidays", ()))
        both = sorted(set(value) & holidays)
        if both:
            days = ", ".join(day.isoformat() for day in both)
            raise ValueError(f"date(s) {days} listed in both extra_holidays and extra_workdays")
        return value

    def periods(self) -> list[Period]:
        """The working-hours periods as (start, end) times, sorted and non-overlapping."""
        return [parse_period(text) for text in self.working_hours]


class WarningLevel(BaseModel):
    """One level of electronic supervision (电子督办), raised once per ticket and deadline."""

    model_config = ConfigDict(extra="forbid")

    # Short code stored with each warning ("due_soon", "overdue" …).
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{1,23}$")
    # Shown on screen.
    label: str = Field(min_length=1, max_length=32)
    # due_within: the deadline is less than `working_hours` of working time away;
    # overdue: the deadline has passed; not_signed: dispatched `minutes` ago and nobody signed.
    kind: Literal["due_within", "overdue", "not_signed"]
    working_hours: float | None = Field(default=None, gt=0, le=24 * 30)
    minutes: int | None = Field(default=None, gt=0, le=24 * 60)
    # Only tickets of these category handlings (empty: all): "department", "supervision_centre", "emergency".
    handlings: list[Literal["department", "supervision_centre", "emergency"]] = []
    # Put the ticket under supervision (督办) as a ticket event when this level is raised.
    supervise: bool = False

    @model_validator(mode="after")
    def _parameters_of_kind(self) -> WarningLevel:
        if self.kind == "due_within" and self.working_hours is None:
            raise ValueError(f"warning {self.name!r}: kind due_within needs working_hours")
        if self.kind == "not_signed" and self.minutes is None:
            raise ValueError(f"warning {self.name!r}: kind not_signed needs minutes")
        return self


DEFAULT_WARNINGS = [
    WarningLevel(name="due_soon", label="即将到期", kind="due_within", working_hours=7.0),
    WarningLevel(name="overdue", label="已超期", kind="overdue", supervise=True),
    WarningLevel(
        name="emergency_unsigned",
        label="应急工单15分钟未签收",
        kind="not_signed",
        minutes=15,
        handlings=["emergency"],
    ),
]


Figure = Literal["response", "resolution", "satisfaction", "on_time"]
FIGURE_LABELS: dict[str, str] = {
    "response": "响应率",
    "resolution": "解决率",
    "satisfaction": "满意率",
    "on_time": "按时办结率",
}


class Tier(BaseModel):
    """A band of the combined score (好 / 较好 / 一般 / 较差 …): the first whose min_score is reached."""

    model_config = ConfigDict(extra="forbid")
    label: str = Field(min_length=1, max_length=16)
    min_score: float = Field(ge=0, le=100)


DEFAULT_TIERS = [
    Tier(label="好", min_score=90),
    Tier(label="较好", min_score=80),
    Tier(label="一般", min_score=60),
    Tier(label="较差", min_score=0),
]


class UnitGroup(BaseModel):
    """Units of these kinds are ranked against each other (departments are not ranked with towns)."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=16)
    kinds: list[Literal["department", "supervision", "enterprise", "township"]] = Field(min_length=1)
    tiers: list[Tier] = Field(default_factory=lambda: list(DEFAULT_TIERS))

    @field_validator("tiers")
    @classmethod
    def _tiers_descend(cls, value: list[Tier]) -> list[Tier]:
        scores = [t.min_score for t in value]
        if not value or scores != sorted(scores, reverse=True) or scores[-1] != 0:
            raise ValueError("tiers must run from the highest min_score down to a last tier at 0")
        return value


class EvaluationSettings(BaseModel):
    """三率 evaluation of the units (承办单位) and the towns, per month: see sla/evaluation.py."""

    model_config = ConfigDict(extra="forbid")
    # 响应率: a dispatch counts as answered when the unit signs for it (or returns it with a reason)
    # within this much working time; emergencies within emergency_response_minutes of clock time.
    response_working_hours: float = Field(default=2.0, gt=0, le=24 * 5)
    emergency_response_minutes: int = Field(default=15, ge=1, le=24 * 60)
    # 满意率: the callback results that count as satisfied.
    satisfied_results: list[Literal["satisfied", "basically_satisfied", "dissatisfied"]] = Field(
        default_factory=lambda: ["satisfied", "basically_satisfied"], min_length=1
    )
    # Weights of the combined score (0-100); a figure with no ticket in the month is left out and the
    # others are weighted up. Not a national rule: each city sets its own.
    weights: dict[Figure, float] = Field(
        default_factory=lambda: {"response": 0.2, "resolution": 0.4, "satisfaction": 0.4, "on_time": 0.0}
    )
    # A unit with fewer distinct rated tickets in the month is shown but not ranked (样本不足).
    min_tickets: int = Field(default=3, ge=1, le=10_000)
    groups: list[UnitGroup] = Field(
        default_factory=lambda: [
            UnitGroup(name="职能部门", kinds=["department", "supervision"]),
            UnitGroup(name="公共服务企业", kinds=["enterprise"]),
            UnitGroup(name="街乡镇", kinds=["township"]),
        ]
    )
    # A liaison may appeal a rating of a month until this many days after the month ends.
    appeal_days: int = Field(default=10, ge=0, le=90)

    @field_validator("weights")
    @classmethod
    def _some_weight(cls, value: dict[str, float]) -> dict[str, float]:
        if any(w < 0 for w in value.values()) or sum(value.values()) <= 0:
            raise ValueError("weights must not be negative and at least one must be above 0")
        return value

    @field_validator("groups")
    @classmethod
    def _kinds_once(cls, value: list[UnitGroup]) -> list[UnitGroup]:
        kinds = [k for g in value for k in g.kinds]
        if len(set(kinds)) != len(kinds):
            raise ValueError("each kind of unit may belong to one group only")
        return value


class HotspotWindow(BaseModel):
    """Tickets of one place and topic within `hours` are compared with the same span of past weeks."""

    model_config = ConfigDict(extra="forbid")
    hours: float = Field(gt=0, le=24 * 7)
    # Fewer tickets than this in the window never raise an alert, however quiet the place usually is.
    min_count: int = Field(default=3, ge=2, le=10_000)


DEFAULT_SENSITIVE = [
    "集体上访",
    "上访",
    "拉横幅",
    "打横幅",
    "跳楼",
    "自杀",
    "轻生",
    "堵路",
    "围堵",
    "静坐",
    "游行",
    "聚集闹事",
    "群体性",
    "爆炸",
    "投毒",
    "持刀",
]


class HotspotSettings(BaseModel):
    """Hotspot early warning (热点预警): see sla/hotspots.py for the test."""

    model_config = ConfigDict(extra="forbid")
    enabled: bool = True
    windows: list[HotspotWindow] = Field(
        default_factory=lambda: [HotspotWindow(hours=2, min_count=3), HotspotWindow(hours=24, min_count=5)],
        min_length=1,
    )
    # The baseline: the same place and topic over this many past weeks.
    baseline_weeks: int = Field(default=4, ge=1, le=52)
    # An alert when a count this high has at most this probability under the baseline (Poisson tail).
    p_value: float = Field(default=0.001, gt=0, lt=0.5)
    # The least rate assumed for a place and topic, per day: a community without past tickets is not
    # "infinitely" surprised by its first two.
    floor_per_day: float = Field(default=0.2, gt=0, le=100)
    # Words that reach the leaders at once, whatever the counts (集体上访, 跳楼 …).
    sensitive_words: list[str] = Field(default_factory=lambda: list(DEFAULT_SENSITIVE))
    # Leaders' mobile numbers: each new alert goes to them by SMS through the configured gateway.
    notify_phones: list[str] = []
    sweep_interval_seconds: int = Field(default=120, ge=10, le=3600)

    @field_validator("sensitive_words")
    @classmethod
    def _words_not_blank(cls, value: list[str]) -> list[str]:
        words = [w.strip() for w in value]
        if any(len(w) < 2 for w in words):
            raise ValueError("each sensitive word needs at least two characters")
        return words

    @field_validator("notify_phones")
    @classmethod
    def _phones(cls, value: list[str]) -> list[str]:
        for phone in value:
            if not re.fullmatch(r"1\d{10}|0\d{9,11}", phone):
                raise ValueError(f"notify_phones: {phone!r} is not a mobile or landline number")
        return value


class ReportSettings(BaseModel):
    """The monthly analysis report (月度分析报告), made on the 1st for the month before."""

    model_config = ConfigDict(extra="forbid")
    # Where the PDF and XLSX files are kept (relative: to config.toml's folder).
    folder: Path = Path("var/reports")
    # A font with Chinese characters (Debian: fonts-wqy-microhei).
    font: Path = Path("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc")
    # `hotline serve` makes last month's report when it is missing (checked every hour).
    scheduled: bool = True


class SlaSection(Section):
    calendar: CalendarSettings = CalendarSettings()
    # National guidance: a department may return (退单) only within this many working days of dispatch.
    return_window_working_days: int = Field(default=2, ge=0, le=30)
    # National guidance: one extension adds at most this many working days.
    max_extension_working_days: int = Field(default=10, ge=1, le=60)
    # 应急处突: the first progress reply is due this many minutes after dispatch, in clock time.
    emergency_first_reply_minutes: int = Field(default=60, ge=1, le=24 * 60)
    # Run the supervision sweeps inside `hotline serve` (one process at a time sweeps anyway).
    sweeps_enabled: bool = True
    sweep_interval_seconds: int = Field(default=60, ge=5, le=3600)
    warnings: list[WarningLevel] = Field(default_factory=lambda: list(DEFAULT_WARNINGS))
    evaluation: EvaluationSettings = EvaluationSettings()
    hotspots: HotspotSettings = HotspotSettings()
    report: ReportSettings = ReportSettings()

    @field_validator("warnings")
    @classmethod
    def _unique_names(cls, value: list[WarningLevel]) -> list[WarningLevel]:
        names = [level.name for level in value]
        if len(set(names)) != len(names):
            raise ValueError(f"warning names must be unique, got {names}")
        return value
