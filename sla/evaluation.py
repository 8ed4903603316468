"""三率 evaluation: each unit (承办单位) and each town is rated every month on

- 响应率 (response): dispatches of the month that the unit answered (signed for, or returned with a
  reason) within `response_working_hours` of working time; emergencies within
  `emergency_response_minutes` of clock time. A dispatch still inside its limit, or taken back by a
  re-dispatch before the limit ran out, is not rated yet;
- 解决率 (resolution): callbacks of the month in which the citizen said whether the matter was solved:
  solved / asked;
- 满意率 (satisfaction): callbacks of the month whose result is one of `satisfied_results` / surveyed;
- 按时办结率 (on-time): tickets the unit replied to in the month, replied by their deadline / replied.

Every rating is one `Fact` (one ticket, one figure, one unit, passed or not), so the league table and
its drill-down to the tickets are the same numbers. The combined score is 100 × the weighted mean of
the rates the unit has (config `[sla.evaluation] weights`); units are ranked within their group
(departments, enterprises, towns …) and put in a tier. A unit with fewer than `min_tickets` rated
tickets is shown but not ranked. An accepted appeal (sla.appeals) takes its ticket out of that figure.

Callbacks and replies are charged to the unit that held the ticket at the time; dispatches to the
unit they went to. The town view counts the same facts by where the matter is (dispatch.gazetteer).
"""

from __future__ import annotations

import calendar as month_days
import re
from collections import defaultdict
from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.departments import Department
from core.errors import RuleViolation
from core.figures import ratio
from dispatch.models import Category, Ticket, TicketEvent
from dispatch.states import Action
from sla.calendar import WorkCalendar
from sla.models import Appeal
from sla.settings import FIGURE_LABELS, EvaluationSettings, Tier, UnitGroup

View = Literal["unit", "town"]
FIGURES = tuple(FIGURE_LABELS)
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_CHUNK = 500


def parse_month(text: str) -> date:
    """'2026-11' -> date(2026, 11, 1); a clear refusal otherwise."""
    match = _MONTH.match(text.strip()) if isinstance(text, str) else None
    if match is None or not 1 <= int(match.group(2)) <= 12 or int(match.group(1)) < 2000:
        raise RuleViolation(f"month {text!r} is not of the form YYYY-MM", "月份格式应为 YYYY-MM，如 2026-11")
    return date(int(match.group(1)), int(match.group(2)), 1)


def month_range(first: date) -> tuple[datetime, datetime]:
    days = month_days.monthrange(first.year, first.month)[1]
    start = datetime.combine(first, time())
    return start, start + timedelta(days=days)


def previous_month(first: date) -> date:
    return (first - timedelta(days=1)).replace(day=1)


@dataclass(frozen=True)
class Fact:
    """One rating: a ticket, a figure, the unit charged, and whether it passed."""

    ticket_id: int
    number: str
    department_id: int | None
    town_code: str | None
    figure: str
    passed: bool
    at: datetime
    detail: str
    appeal: str | None = None  # the state of an appeal against it (pending, accepted, rejected)

    @property
    def counts(self) -> bool:
        return self.appeal != "accepted"


# ---- the facts of a month ------------------------------------------------------------------------


def month_facts(
    session: Session,
    settings: EvaluationSettings,
    calendar: WorkCalendar,
    first: date,
    now: datetime,
    ticket_ids: list[int] | None = None,
) -> list[Fact]:
    """Every rating of the month starting `first` (of some tickets only, when `ticket_ids` is given)."""
    start, end = month_range(first)
    facts = [
        *_response_facts(session, settings, calendar, start, end, now, ticket_ids),
        *_callback_facts(session, settings, start, end, ticket_ids),
        *_on_time_facts(session, start, end, ticket_ids),
    ]
    return _with_appeals(session, facts, f"{first:%Y-%m}")


def _only(query: Any, column: Any, ticket_ids: list[int] | None) -> Any:
    return query if ticket_ids is None else query.where(column.in_(ticket_ids))


def _response_facts(
    session: Session,
    settings: EvaluationSettings,
    calendar: WorkCalendar,
    start: datetime,
    end: datetime,
    now: datetime,
    ticket_ids: list[int] | None,
) -> list[Fact]:
    sent = (
        select(
            TicketEvent.ticket_id,
            TicketEvent.seq,
            TicketEvent.department_id,
            TicketEvent.at,
            Ticket.number,
            Ticket.town_code,
            Category.handling,
        )
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .outerjoin(Category, Category.id == Ticket.category_id)
        .where(
            TicketEvent.action.in_((Action.DISPATCH.value, Action.REDISPATCH.value)),
            TicketEvent.at >= start,
            TicketEvent.at < end,
        )
    )
    dispatches = session.execute(_only(sent, TicketEvent.ticket_id, ticket_ids)).all()
    later = _later_events(session, sorted({d.ticket_id for d in dispatches}))
    hours = timedelta(hours=settings.response_working_hours)
    emergency = timedelta(minutes=settings.emergency_response_minutes)
    facts = []
    for d in dispatches:
        if d.handling == "emergency":
            limit, limit_text = d.at + emergency, f"{settings.emergency_response_minutes}分钟"
        else:
            limit, limit_text = (
                calendar.add_working_time(d.at, hours),
                f"{settings.response_working_hours:g}个工作小时",
            )
        answer = next(((a, at) for seq, a, at in later.get(d.ticket_id, ()) if seq > d.seq), None)
        if answer is not None and answer[0] == Action.REDISPATCH.value and answer[1] <= limit:
            continue  # taken back before the limit ran out: nothing to rate
        if answer is not None and answer[0] != Action.REDISPATCH.value:
            passed = answer[1] <= limit
            what = "签收" if answer[0] == Action.SIGN.value else "退单"
            detail = f"{what}于 {answer[1]:%m-%d %H:%M}（时限{limit_text}）"
        elif limit > now:
            continue  # not answered yet, still in time
        else:
            passed, detail = False, f"时限{limit_text}内未签收"
        facts.append(
            Fact(d.ticket_id, d.number, d.department_id, d.town_code, "response", passed, d.at, detail)
        )
    return facts


def _later_events(session: Session, ticket_ids: list[int]) -> dict[int, list[tuple[int, str, datetime]]]:
    """Per ticket, its signs, returns and re-dispatches in order."""
    settling = (Action.SIGN.value, Action.RETURN.value, Action.REDISPATCH.value)
    later: dict[int, list[tuple[int, str, datetime]]] = defaultdict(list)
    for chunk in range(0, len(ticket_ids), _CHUNK):
        query = select(TicketEvent.ticket_id, TicketEvent.seq, TicketEvent.action, TicketEvent.at).where(
            TicketEvent.ticket_id.in_(ticket_ids[chunk : chunk + _CHUNK]), TicketEvent.action.in_(settling)
        )
        for ticket_id, seq, action, at in session.execute(
            query.order_by(TicketEvent.ticket_id, TicketEvent.seq)
        ):
            later[ticket_id].append((seq, action, at))
    return later


_RESULT_LABELS = {"satisfied": "满意", "basically_satisfied": "基本满意", "dissatisfied": "不满意"}


def _callback_facts(
    session: Session,
    settings: EvaluationSettings,
    start: datetime,
    end: datetime,
    ticket_ids: list[int] | None,
) -> list[Fact]:
    query = (
        select(
            TicketEvent.ticket_id,
            TicketEvent.department_id,
            TicketEvent.at,
            TicketEvent.data,
            Ticket.number,
            Ticket.town_code,
        )
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .where(
            TicketEvent.action == Action.RECORD_CALLBACK.value, TicketEvent.at >= start, TicketEvent.at < end
        )
    )
    satisfied = set(settings.satisfied_results)
    facts = []
    for row in session.execute(_only(query, TicketEvent.ticket_id, ticket_ids)):
        data = row.data or {}
        result, solved = data.get("result"), data.get("solved")
        label = _RESULT_LABELS.get(result, str(result))
        base = (row.ticket_id, row.number, row.department_id, row.town_code)
        facts.append(Fact(*base, "satisfaction", result in satisfied, row.at, f"回访评价：{label}"))
        if solved is not None:
            facts.append(
                Fact(
                    *base,
                    "resolution",
                    bool(solved),
                    row.at,
                    "市民表示已解决" if solved else "市民表示未解决",
                )
            )
    return facts


def _on_time_facts(
    session: Session, start: datetime, end: datetime, ticket_ids: list[int] | None
) -> list[Fact]:
    """Each reply of the month against the deadline it answered (kept with the reply event; older
    replies without it are judged against the ticket's deadline)."""
    query = (
        select(
            TicketEvent.ticket_id,
            TicketEvent.department_id,
            TicketEvent.at,
            TicketEvent.data,
            Ticket.number,
            Ticket.town_code,
            Ticket.deadline,
        )
        .join(Ticket, Ticket.id == TicketEvent.ticket_id)
        .where(TicketEvent.action == Action.REPLY.value, TicketEvent.at >= start, TicketEvent.at < end)
    )
    facts = []
    for row in session.execute(_only(query, TicketEvent.ticket_id, ticket_ids)):
        data = row.data or {}
        deadline = datetime.fromisoformat(data["deadline"]) if data.get("deadline") else row.deadline
        if deadline is None:
            continue
        passed = bool(data["on_time"]) if "on_time" in data else row.at <= deadline
        detail = f"答复于 {row.at:%m-%d %H:%M}，时限 {deadline:%m-%d %H:%M}"
        base = (row.ticket_id, row.number, row.department_id, row.town_code)
        facts.append(Fact(*base, "on_time", passed, row.at, detail))
    return facts


def _with_appeals(session: Session, facts: list[Fact], month: str) -> list[Fact]:
    appeals = {
        (a.ticket_id, a.figure, a.department_id): a.state
        for a in session.scalars(select(Appeal).where(Appeal.month == month))
    }
    if not appeals:
        return facts
    out = []
    for f in facts:
        state = appeals.get((f.ticket_id, f.figure, f.department_id))
        out.append(replace(f, appeal=state) if state else f)
    return out


# ---- scores and the league table -----------------------------------------------------------------


@dataclass
class Score:
    key: str
    name: str
    kind: str
    counts: dict[str, tuple[int, int]] = field(default_factory=dict)  # figure -> (passed, rated)
    appealed: int = 0  # ratings taken out by accepted appeals
    tickets: int = 0  # distinct tickets rated (min_tickets counts these)
    score: float | None = None
    rank: int | None = None
    tier: str | None = None
    previous_score: float | None = None
    previous_rank: int | None = None

    def rate(self, figure: str) -> float | None:
        passed, rated = self.counts.get(figure, (0, 0))
        return ratio(passed, rated)

    @property
    def rated(self) -> int:
        return sum(rated for _, rated in self.counts.values())

    @property
    def score_change(self) -> float | None:
        if self.score is None or self.previous_score is None:
            return None
        return round(self.score - self.previous_score, 1)

    @property
    def rank_change(self) -> int | None:
        """Places gained since last month (positive: moved up)."""
        if self.rank is None or self.previous_rank is None:
            return None
        return self.previous_rank - self.rank

    def as_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "kind": self.kind,
            "rated": self.rated,
            "tickets": self.tickets,
            "appealed": self.appealed,
            "figures": {
                f: {
                    "passed": self.counts.get(f, (0, 0))[0],
                    "rated": self.counts.get(f, (0, 0))[1],
                    "rate": self.rate(f),
                }
                for f in FIGURES
            },
            "score": self.score,
            "rank": self.rank,
            "tier": self.tier,
            "previous_score": self.previous_score,
            "previous_rank": self.previous_rank,
            "score_change": self.score_change,
            "rank_change": self.rank_change,
        }


@dataclass
class League:
    group: str
    rows: list[Score]


@dataclass(frozen=True)
class Unit:
    key: str
    name: str
    kind: str


def units_of(session: Session, view: View, towns: dict[str, str]) -> dict[Any, Unit]:
    """The units rated in a view: departments by id, or the gazetteer's towns by code."""
    if view == "town":
        return {code: Unit(code, name, "town") for code, name in towns.items()}
    return {
        d.id: Unit(d.code, d.name, d.kind)
        for d in session.scalars(select(Department).where(Department.active))
    }


def scores(
    facts: list[Fact], units: dict[Any, Unit], view: View, settings: EvaluationSettings
) -> dict[str, Score]:
    """Counts and combined score per unit (every unit listed, rated or not)."""
    out = {u.key: Score(u.key, u.name, u.kind) for u in units.values()}
    tally: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    rated: dict[str, set[int]] = defaultdict(set)
    for f in facts:
        unit = units.get(f.town_code if view == "town" else f.department_id)
        if unit is None:
            continue
        if not f.counts:
            out[unit.key].appealed += 1
            continue
        cell = tally[unit.key][f.figure]
        cell[0] += f.passed
        cell[1] += 1
        rated[unit.key].add(f.ticket_id)
    for key, figures in tally.items():
        out[key].counts = {figure: (p, r) for figure, (p, r) in figures.items()}
        out[key].tickets = len(rated[key])
    for s in out.values():
        s.score = combined_score(s, settings)
    return out


def combined_score(s: Score, settings: EvaluationSettings) -> float | None:
    weighted = [(w, s.rate(f)) for f, w in settings.weights.items() if w > 0 and s.rate(f) is not None]
    if not weighted:
        return None
    total = sum(w for w, _ in weighted)
    return round(100 * sum(w * r for w, r in weighted if r is not None) / total, 1)


def tier_of(score: float | None, tiers: list[Tier]) -> str | None:
    if score is None:
        return None
    return next((t.label for t in tiers if score >= t.min_score), None)


def _groups(view: View, settings: EvaluationSettings) -> list[UnitGroup]:
    if view == "town":
        township = next((g for g in settings.groups if "township" in g.kinds), None)
        tiers = township.tiers if township else None
        return [UnitGroup(name="属地（按事发地）", kinds=["township"], **({"tiers": tiers} if tiers else {}))]
    return settings.groups


def rank(scored: dict[str, Score], view: View, settings: EvaluationSettings) -> list[League]:
    """Rank within each group, best score first; units below min_tickets are listed after, unranked."""
    leagues = []
    for group in _groups(view, settings):
        members = [s for s in scored.values() if view == "town" or s.kind in group.kinds]
        ranked = [s for s in members if s.score is not None and s.tickets >= settings.min_tickets]
        ranked.sort(key=lambda s: (-(s.score or 0), -s.tickets, s.name))
        for position, s in enumerate(ranked, start=1):
            s.rank, s.tier = position, tier_of(s.score, group.tiers)
        rest = sorted((s for s in members if s not in ranked), key=lambda s: (-s.tickets, s.name))
        leagues.append(League(group.name, ranked + rest))
    return leagues


def league_tables(
    session: Session,
    settings: EvaluationSettings,
    calendar: WorkCalendar,
    first: date,
    now: datetime,
    view: View = "unit",
    towns: dict[str, str] | None = None,
) -> list[League]:
    """The month's league tables, with each unit's score and rank of the month before."""
    units = units_of(session, view, towns or {})
    before = scores(
        month_facts(session, settings, calendar, previous_month(first), now), units, view, settings
    )
    rank(before, view, settings)
    leagues = rank(
        scores(month_facts(session, settings, calendar, first, now), units, view, settings), view, settings
    )
    for league in leagues:
        for s in league.rows:
            s.previous_score, s.previous_rank = before[s.key].score, before[s.key].rank
    return leagues


def unit_facts(
    session: Session,
    settings: EvaluationSettings,
    calendar: WorkCalendar,
    first: date,
    now: datetime,
    key: str,
    view: View = "unit",
    figure: str | None = None,
) -> list[Fact]:
    """The tickets behind one unit's figures of the month (the drill-down), failed ones first."""
    if view == "town":
        keep = lambda f: f.town_code == key  # noqa: E731
    else:
        department = session.scalar(select(Department.id).where(Department.code == key))
        keep = lambda f: department is not None and f.department_id == department  # noqa: E731
    facts = [
        f
        for f in month_facts(session, settings, calendar, first, now)
        if keep(f) and (figure is None or f.figure == figure)
    ]
    return sorted(facts, key=lambda f: (f.passed, FIGURES.index(f.figure), f.at))
