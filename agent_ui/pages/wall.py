"""The wall display (大屏) of the hotline hall: calls waiting, the seats, today's answer rate and
tickets, the hotspot and supervision alerts and the day's top topics, readable from across a room at
1920×1080. It reloads itself; the queue and the hotspot alerts follow the live events in between."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, time, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from agent_ui.deps import SupervisorDep, render
from callcenter.service import seat_board, waiting_calls
from callcenter.stats import queue_figures
from core.web import ContextDep, SessionDep
from sla.hotspots import alerts as hotspot_alerts
from sla.reports import daily_trend, recent_alerts, top_topics

router = APIRouter(include_in_schema=False)

RELOAD_SECONDS = 30
TALKING = ("talking", "ringing")


@router.get("/wall", response_class=HTMLResponse)
def wall(request: Request, ctx: ContextDep, session: SessionDep, user: SupervisorDep) -> Response:
    now = ctx.clock.now()
    today = datetime.combine(now.date(), time())
    tomorrow = today + timedelta(days=1)
    seats = seat_board(session, now)
    states = Counter(s["state"] for s in seats)
    [day] = daily_trend(session, now.date(), 1)
    return render(
        request,
        ctx,
        "wall.html",
        user,
        now=now,
        queue=waiting_calls(session, now),
        seats=seats,
        talking=sum(states[s] for s in TALKING),
        ready=states["ready"],
        calls=queue_figures(session, today, tomorrow),
        day=day,
        topics=top_topics(session, today, tomorrow, limit=6),
        hotspots=hotspot_alerts(session, limit=4),  # open ones, newest first
        alerts=recent_alerts(session, now - timedelta(hours=24), limit=8),
        reload_seconds=RELOAD_SECONDS,
    )
