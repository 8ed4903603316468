"""Hotspot early warning (热点预警): several calls about one matter in one place within hours reach the
leaders before the tenth call, and words such as 集体上访 or 跳楼 reach them at once.

The test. For each window of `[sla.hotspots] windows` (e.g. 2 h and 24 h) the sweep counts the
tickets of each place (community, or town when no community is known) and sub-category created in
the last `hours`. The baseline is the same place and sub-category over the `baseline_weeks` weeks
before the window: its expected count for a window of that length is λ = n_past × hours / (weeks ×
168), never below `floor_per_day` × hours / 24. A count k is an alert when k ≥ min_count and the
Poisson tail P[X ≥ k | λ] is below `p_value` (0.001 by default): under the place's usual rate, so
many calls in so short a time happen less than once in a thousand windows. Counting is Poisson
because calls arrive independently; the floor keeps a place without history from alerting on its
first two calls.

An alert stays one alert while it is open or acknowledged: a later sweep that finds more tickets
updates its count. A closed alert is raised again only by tickets that came after it was closed.
New alerts are published live (topic `sla.hotspot`, to the dashboard and the consoles) and sent by
SMS to `notify_phones` through the SMS gateway; acknowledging and closing are audited.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from scipy.stats import poisson
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from core import audit
from core.accounts.actor import Actor
from core.accounts.models import Role
from core.errors import Conflict, NotFound, NotPermitted, RuleViolation
from dispatch.callbacks.sms import backend_for, send_sms
from dispatch.gazetteer import Gazetteer
from dispatch.models import SubCategory, Ticket
from sla.models import HotspotAlert, SweepRun
from sla.settings import HotspotSettings, HotspotWindow
from sla.supervision import claim_sweep

log = logging.getLogger(__name__)
Publish = Callable[[str, dict[str, Any]], object]
STATE_LABELS = {"open": "待处置", "acknowledged": "已知悉", "closed": "已处置"}
KIND_LABELS = {"spike": "聚集性诉求", "sensitive": "敏感诉求"}
DECIDERS = (Role.SUPERVISOR, Role.ADMIN)
OPEN = ("open", "acknowledged")


def poisson_tail(k: int, mean: float) -> float:
    """P[X ≥ k] for X ~ Poisson(mean)."""
    return float(poisson.sf(k - 1, mean))


@dataclass
class Finding:
    town_code: str
    community_code: str | None
    subcategory_id: int | None
    window: HotspotWindow
    count: int = 0
    expected: float = 0.0
    p_value: float = 1.0
    first_at: datetime | None = None
    last_at: datetime | None = None
    tickets: list[str] = field(default_factory=list)

    @property
    def key(self) -> str:
        place = f"{self.town_code}:{self.community_code or '-'}:{self.subcategory_id or '-'}"
        return f"spike:{place}:{self.window.hours:g}"


Place = tuple[str, str | None, int | None]


def find_spikes(session: Session, settings: HotspotSettings, now: datetime) -> list[Finding]:
    """Every place × topic × window whose count is improbably high against its own past."""
    found = []
    for window in settings.windows:
        span = timedelta(hours=window.hours)
        recent = _recent(session, now - span, now)
        candidates = {place: rows for place, rows in recent.items() if len(rows) >= window.min_count}
        if not candidates:
            continue
        past = _past_counts(session, now - span - timedelta(weeks=settings.baseline_weeks), now - span)
        scale = window.hours / (settings.baseline_weeks * 7 * 24)
        floor = settings.floor_per_day * window.hours / 24
        for place, rows in candidates.items():
            expected = max(past.get(place, 0) * scale, floor)
            p = poisson_tail(len(rows), expected)
            if p < settings.p_value:
                town, community, sub = place
                found.append(
                    Finding(
                        town, community, sub, window, len(rows), round(expected, 3), p,
                        min(at for _, at in rows), max(at for _, at in rows), [n for n, _ in rows],
                    )
                )  # fmt: skip
    return found


def _recent(session: Session, start: datetime, end: datetime) -> dict[Place, list[tuple[str, datetime]]]:
    query = select(
        Ticket.town_code, Ticket.community_code, Ticket.subcategory_id, Ticket.number, Ticket.created_at
    ).where(Ticket.created_at >= start, Ticket.created_at < end, Ticket.town_code.is_not(None))
    out: dict[Place, list[tuple[str, datetime]]] = defaultdict(list)
    for town, community, sub, number, at in session.execute(query.order_by(Ticket.created_at)):
        out[(town, community, sub)].append((number, at))
    return out


def _past_counts(session: Session, start: datetime, end: datetime) -> dict[Place, int]:
    key = (Ticket.town_code, Ticket.community_code, Ticket.subcategory_id)
    query = (
        select(*key, func.count())
        .where(Ticket.created_at >= start, Ticket.created_at < end, Ticket.town_code.is_not(None))
        .group_by(*key)
    )
    return {(t, c, s): n for t, c, s, n in session.execute(query)}


# ---- alerts ----------------------------------------------------------------------------------------


def _place_label(places: Gazetteer, town: str | None, community: str | None) -> str:
    if town is None:
        return "未定位"
    return places.label(town, community) or town


def _topic(session: Session, subcategory_id: int | None) -> str:
    if subcategory_id is None:
        return "未分类"
    return session.scalar(select(SubCategory.name).where(SubCategory.id == subcategory_id)) or "未分类"


def raise_spikes(
    session: Session,
    settings: HotspotSettings,
    places: Gazetteer,
    now: datetime,
    publish: Publish | None = None,
) -> list[HotspotAlert]:
    """The sweep: new alerts for new findings, growing counts for open ones. Returns what changed."""
    changed = []
    for finding in find_spikes(session, settings, now):
        alert = _latest(session, finding.key)
        if alert is not None and alert.state == "closed" and alert.closed_at and finding.last_at:
            if finding.last_at <= alert.closed_at:
                continue  # nothing new since it was closed
            alert = None
        if alert is not None and alert.state in OPEN:
            if finding.count <= alert.count:
                continue
            _fill(alert, finding, session, places, now)
        else:
            alert = HotspotAlert(kind="spike", key=finding.key, state="open", created_at=now, words=[])
            _fill(alert, finding, session, places, now)
            session.add(alert)
        changed.append(alert)
    session.flush()
    for alert in changed:
        _announce(session, alert, publish)
    return changed


def _latest(session: Session, key: str) -> HotspotAlert | None:
    return session.scalar(
        select(HotspotAlert).where(HotspotAlert.key == key).order_by(HotspotAlert.id.desc()).limit(1)
    )


def _fill(alert: HotspotAlert, f: Finding, session: Session, places: Gazetteer, now: datetime) -> None:
    place, topic = _place_label(places, f.town_code, f.community_code), _topic(session, f.subcategory_id)
    alert.town_code, alert.community_code, alert.subcategory_id = (
        f.town_code,
        f.community_code,
        f.subcategory_id,
    )
    alert.window_hours, alert.count, alert.expected, alert.p_value = (
        f.window.hours,
        f.count,
        f.expected,
        f.p_value,
    )
    alert.tickets = f.tickets
    assert f.first_at is not None and f.last_at is not None
    alert.first_at, alert.last_at, alert.updated_at = f.first_at, f.last_at, now
    alert.title = f"{place} · {topic}：{f.window.hours:g}小时内{f.count}件（平时约{f.expected:.1f}件）"


def sensitive_words(settings: HotspotSettings, text: str) -> list[str]:
    return [w for w in settings.sensitive_words if w in text]


class SensitiveLane:
    """Watches every new ticket (the ticket service calls it): sensitive words raise an alert in the
    same transaction, announced live when it commits."""

    def __init__(self, settings: HotspotSettings, places: Callable[[], Gazetteer], publish: Publish) -> None:
        self.settings, self.places, self.publish = settings, places, publish

    def registered(self, session: Session, ticket: Ticket) -> None:
        if not self.settings.enabled:
            return
        words = sensitive_words(self.settings, f"{ticket.content} {ticket.address or ''}")
        if not words:
            return
        place = _place_label(self.places(), ticket.town_code, ticket.community_code)
        alert = HotspotAlert(
            kind="sensitive",
            key=f"sensitive:{ticket.number}",
            state="open",
            town_code=ticket.town_code,
            community_code=ticket.community_code,
            subcategory_id=ticket.subcategory_id,
            title=f"{place} · 敏感诉求（{'、'.join(words)}）：{ticket.number}",
            count=1,
            words=words,
            tickets=[ticket.number],
            first_at=ticket.created_at,
            last_at=ticket.created_at,
            created_at=ticket.created_at,
            updated_at=ticket.created_at,
        )
        with session.begin_nested():  # a failure here loses the alert, never the ticket
            session.add(alert)
        _announce(session, alert, self.publish)


def _announce(session: Session, alert: HotspotAlert, publish: Publish | None) -> None:
    """Publish the alert live once the transaction that made it commits."""
    if publish is None:
        return
    payload = alert_payload(alert)
    event.listen(session, "after_commit", lambda _s: publish("sla.hotspot", payload), once=True)


def alert_payload(alert: HotspotAlert) -> dict[str, Any]:
    return {
        "id": alert.id,
        "kind": alert.kind,
        "kind_label": KIND_LABELS[alert.kind],
        "state": alert.state,
        "state_label": STATE_LABELS[alert.state],
        "title": alert.title,
        "count": alert.count,
        "tickets": alert.tickets,
    }


def notify_leaders(
    session: Session, settings: HotspotSettings, send: Callable[[str, str], object], now: datetime
) -> int:
    """SMS every alert not yet sent to the leaders' phones; returns the alerts sent."""
    if not settings.notify_phones:
        return 0
    pending = session.scalars(
        select(HotspotAlert).where(HotspotAlert.notified_at.is_(None), HotspotAlert.state != "closed")
    ).all()
    for alert in pending:
        text = f"【12345热点预警】{KIND_LABELS[alert.kind]}：{alert.title}。请关注。"
        for phone in settings.notify_phones:
            send(phone, text)
        alert.notified_at = now
    return len(pending)


# ---- supervisors' actions ----------------------------------------------------------------------------


def acknowledge(
    session: Session, actor: Actor, alert_id: int, note: str | None, now: datetime
) -> HotspotAlert:
    alert = _decidable(session, actor, alert_id)
    if alert.state != "open":
        raise Conflict(f"alert {alert_id} is {alert.state}", f"该预警已{STATE_LABELS[alert.state]}")
    alert.state, alert.acknowledged_at, alert.acknowledged_by = "acknowledged", now, actor.name
    if note:
        alert.note = note
    _audit(session, actor, "hotspot.acknowledge", alert, now)
    return alert


def close(session: Session, actor: Actor, alert_id: int, note: str | None, now: datetime) -> HotspotAlert:
    alert = _decidable(session, actor, alert_id)
    if alert.state == "closed":
        raise Conflict(f"alert {alert_id} is closed already", "该预警已处置，不能重复处置")
    if not (note or "").strip():
        raise RuleViolation("closing an alert needs a note of what was done", "处置预警须填写处置情况")
    if alert.acknowledged_at is None:
        alert.acknowledged_at, alert.acknowledged_by = now, actor.name
    alert.state, alert.closed_at, alert.closed_by, alert.note = "closed", now, actor.name, note
    _audit(session, actor, "hotspot.close", alert, now)
    return alert


def _decidable(session: Session, actor: Actor, alert_id: int) -> HotspotAlert:
    if actor.role not in DECIDERS:
        raise NotPermitted("only supervisors handle hotspot alerts", "仅督办员可以处置热点预警")
    alert = session.get(HotspotAlert, alert_id, with_for_update=True)
    if alert is None:
        raise NotFound(f"alert {alert_id} does not exist", "预警不存在")
    return alert


def _audit(session: Session, actor: Actor, action: str, alert: HotspotAlert, now: datetime) -> None:
    session.flush()
    audit.record(
        session,
        at=now,
        action=action,
        username=actor.name,
        user_id=actor.user_id,
        role=actor.role.value,
        ticket_number=alert.tickets[0] if alert.tickets else None,
        detail={"alert": alert.id, "title": alert.title, "note": alert.note},
    )


def alerts(session: Session, states: tuple[str, ...] = OPEN, limit: int = 100) -> list[HotspotAlert]:
    query = select(HotspotAlert).where(HotspotAlert.state.in_(states))
    return list(
        session.scalars(query.order_by(HotspotAlert.created_at.desc(), HotspotAlert.id.desc()).limit(limit))
    )


HOTSPOT_SWEEP = "hotspots"
HOTSPOT_LOCK_KEY = 12345_0002


def hotspot_sweep(session: Session, ctx: Any, now: datetime) -> list[HotspotAlert] | None:
    """One hotspot sweep in the caller's transaction; None when another process holds it."""
    if not claim_sweep(session, now, HOTSPOT_SWEEP, HOTSPOT_LOCK_KEY):
        return None
    settings = ctx.settings.sla.hotspots
    changed = raise_spikes(session, settings, ctx.gazetteer, now, ctx.events.publish)
    if settings.notify_phones:
        backend = backend_for(ctx.settings.callbacks.sms, ctx.settings.base_dir)
        notify_leaders(
            session, settings, lambda phone, text: send_sms(session, backend, ctx.clock, phone, text), now
        )
    run = session.get(SweepRun, HOTSPOT_SWEEP)
    if run is not None:
        run.finished_at, run.raised, run.note = now, len(changed), f"alerts={len(changed)}"
    return changed


def run_hotspot_sweep(ctx: Any) -> list[HotspotAlert] | None:
    """The scheduler's job: a sweep in its own transaction; a busy database only skips this round."""
    session = ctx.sessions()
    try:
        changed = hotspot_sweep(session, ctx, ctx.clock.now())
        session.commit()
    except OperationalError as exc:
        session.rollback()
        log.warning("hotspot sweep skipped: %s", exc.orig)
        return None
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
    if changed:
        log.info("hotspot sweep: %d alerts new or grown", len(changed))
    return changed


audit.register_labels({"hotspot.acknowledge": "知悉热点预警", "hotspot.close": "处置热点预警"})
