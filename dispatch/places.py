"""Tickets and places: placing tickets again after the gazetteer changed, counting them per place."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from dispatch.gazetteer import Gazetteer
from dispatch.models import Ticket

BATCH = 2000


def locate_tickets(session: Session, places: Gazetteer, only_missing: bool = True) -> int:
    """Place tickets by their address and content; returns how many changed place. In batches by id,
    with plain UPDATEs (no state change, so the ticket's version stays)."""
    changed, last = 0, 0
    while True:
        query = select(Ticket.id, Ticket.address, Ticket.content, Ticket.town_code, Ticket.community_code)
        query = query.where(Ticket.id > last).order_by(Ticket.id).limit(BATCH)
        if only_missing:
            query = query.where(Ticket.town_code.is_(None))
        rows = session.execute(query).all()
        if not rows:
            return changed
        for row in rows:
            place = places.locate(row.address, row.content)
            town, community = (place.town_code, place.community_code) if place else (None, None)
            if (town, community) != (row.town_code, row.community_code):
                session.execute(
                    update(Ticket)
                    .where(Ticket.id == row.id)
                    .values(town_code=town, community_code=community)
                    .execution_options(synchronize_session=False)
                )
                changed += 1
        last = rows[-1].id
        session.flush()


def counts_by_community(session: Session, start: datetime, end: datetime) -> dict[str, int]:
    """Tickets registered in [start, end) per community code (tickets placed only in a town left out)."""
    query = (
        select(Ticket.community_code, func.count())
        .where(Ticket.created_at >= start, Ticket.created_at < end, Ticket.community_code.is_not(None))
        .group_by(Ticket.community_code)
    )
    return {code: n for code, n in session.execute(query)}
