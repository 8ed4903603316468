"""JSON API of the hotspot early warning: the alerts, acknowledging and closing them, a sweep now."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import Path, Query
from pydantic import BaseModel, StringConstraints

from core.accounts.models import Role
from core.errors import NotPermitted
from core.web import ActorDep, ContextDep, SessionDep, api_router, commit
from sla.hotspots import KIND_LABELS, OPEN, STATE_LABELS, acknowledge, alerts, close, hotspot_sweep
from sla.models import HotspotAlert

router = api_router(prefix="/api", tags=["hotspots"])
AlertId = Annotated[int, Path(ge=1, le=2**31 - 1)]
Note = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None
# Operators see the alerts too: a caller about a known hotspot is told it is being handled.
VIEWERS = (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)


class AlertOut(BaseModel):
    id: int
    kind: str
    kind_label: str
    state: str
    state_label: str
    title: str
    town: str | None
    community: str | None
    window_hours: float | None
    count: int
    expected: float | None
    p_value: float | None
    words: list[str]
    tickets: list[str]
    first_at: datetime
    last_at: datetime
    created_at: datetime
    acknowledged_by: str | None
    closed_by: str | None
    note: str | None


def alert_out(a: HotspotAlert) -> AlertOut:
    return AlertOut(
        id=a.id,
        kind=a.kind,
        kind_label=KIND_LABELS[a.kind],
        state=a.state,
        state_label=STATE_LABELS[a.state],
        title=a.title,
        town=a.town_code,
        community=a.community_code,
        window_hours=a.window_hours,
        count=a.count,
        expected=a.expected,
        p_value=a.p_value,
        words=list(a.words or []),
        tickets=list(a.tickets or []),
        first_at=a.first_at,
        last_at=a.last_at,
        created_at=a.created_at,
        acknowledged_by=a.acknowledged_by,
        closed_by=a.closed_by,
        note=a.note,
    )


class NoteIn(BaseModel):
    note: Note = None


@router.get("/hotspots")
def list_alerts(
    session: SessionDep,
    actor: ActorDep,
    state: Annotated[Literal["open", "all"], Query(description="open: not yet closed")] = "open",
) -> list[AlertOut]:
    if actor.role not in VIEWERS:
        raise NotPermitted("hotspot alerts are for the hotline's staff", "仅热线工作人员可以查看热点预警")
    states = OPEN if state == "open" else (*OPEN, "closed")
    return [alert_out(a) for a in alerts(session, states)]


@router.post("/hotspots/{alert_id}/acknowledge")
def acknowledge_alert(
    alert_id: AlertId, body: NoteIn, ctx: ContextDep, session: SessionDep, actor: ActorDep
) -> AlertOut:
    """已知悉: a supervisor has seen the alert and is on it."""
    alert = acknowledge(session, actor, alert_id, body.note, ctx.clock.now())
    commit(session)
    return alert_out(alert)


@router.post("/hotspots/{alert_id}/close")
def close_alert(
    alert_id: AlertId, body: NoteIn, ctx: ContextDep, session: SessionDep, actor: ActorDep
) -> AlertOut:
    """已处置: closed with a note of what was done."""
    alert = close(session, actor, alert_id, body.note, ctx.clock.now())
    commit(session)
    return alert_out(alert)


@router.post("/hotspots/sweep")
def sweep_now(ctx: ContextDep, session: SessionDep, actor: ActorDep) -> dict[str, Any]:
    """Run the hotspot sweep now (supervisors)."""
    if actor.role not in (Role.SUPERVISOR, Role.ADMIN):
        raise NotPermitted("only supervisors may start a sweep", "仅督办员可以立即执行热点扫描")
    changed = hotspot_sweep(session, ctx, ctx.clock.now())
    commit(session)
    if changed is None:
        return {"swept": False, "reason": "another process is sweeping"}
    return {"swept": True, "alerts": [alert_out(a).model_dump(mode="json") for a in changed]}
