"""The only door through which a ticket's state changes.

`apply_transition` checks, in this order, that the actor's role may take the action, that a
department user acts on its own department's ticket, and that the action leads somewhere from the
ticket's state. Only then does it run the action's effect, set the new state and append the event.
Effects validate their input before they change anything, so a refused action changes nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Integer, and_, func, insert, literal, select, update
from sqlalchemy.orm import Session

from core.accounts.actor import Actor
from core.accounts.models import ROLE_LABELS, Role
from core.errors import NotPermitted, RuleViolation
from dispatch.errors import IllegalTransition
from dispatch.models import Ticket, TicketEvent
from dispatch.states import ACTION_LABELS, STATE_LABELS, TRANSITIONS, Action, TicketState, state_door

Effect = Callable[[Ticket], None]


def check_allowed(ticket: Ticket, actor: Actor, action: Action) -> TicketState:
    """Raise unless `actor` may take `action` on `ticket` now; return the state it leads to."""
    transition = TRANSITIONS[action]
    if actor.role not in transition.roles:
        raise NotPermitted(
            f"role {actor.role.value} may not {action.value} tickets",
            f"{ROLE_LABELS[actor.role]}无权执行「{ACTION_LABELS[action]}」",
        )
    if actor.role == Role.LIAISON and ticket.lead_department_id != actor.department_id:
        raise NotPermitted(
            f"ticket {ticket.number} belongs to another department",
            f"工单 {ticket.number} 不属于本部门",
        )
    state = TicketState(ticket.state)
    if state not in transition.sources:
        raise IllegalTransition(
            ticket.number, state.value, action.value, STATE_LABELS[state], ACTION_LABELS[action]
        )
    _check_review(ticket, action)
    return transition.target or state


# The hotline's review of a reply: decided once, and nothing reaches the citizen before it.
REVIEW_ACTIONS = frozenset({Action.APPROVE_REPLY, Action.REJECT_REPLY})
NEEDS_APPROVED_REPLY = frozenset({Action.RECORD_CALLBACK, Action.ARCHIVE})


def _check_review(ticket: Ticket, action: Action) -> None:
    if action in REVIEW_ACTIONS and ticket.reply_approved_at is not None:
        raise RuleViolation(
            f"the reply of ticket {ticket.number} was already approved",
            f"工单 {ticket.number} 的答复已审核通过",
        )
    if action in NEEDS_APPROVED_REPLY and ticket.reply_approved_at is None:
        raise RuleViolation(
            f"the reply of ticket {ticket.number} awaits the hotline's review",
            f"工单 {ticket.number} 的答复尚未审核，审核通过后才能{ACTION_LABELS[action]}",
        )


def apply_transition(
    ticket: Ticket,
    actor: Actor,
    action: Action,
    now: datetime,
    note: str | None = None,
    data: dict[str, Any] | None = None,
    effect: Effect | None = None,
) -> TicketEvent:
    target = check_allowed(ticket, actor, action)
    source = ticket.state
    if effect is not None:
        effect(ticket)
    with state_door():
        ticket.state = target.value
    ticket.updated_at = now
    return record_event(ticket, actor, action, now, source, note, data)


def record_event(
    ticket: Ticket,
    actor: Actor,
    action: Action,
    now: datetime,
    source: str | None,
    note: str | None,
    data: dict[str, Any] | None,
) -> TicketEvent:
    event = TicketEvent(
        seq=len(ticket.events) + 1,
        action=action.value,
        actor_id=actor.user_id,
        actor_name=actor.name,
        department_id=ticket.lead_department_id,
        at=now,
        from_state=source,
        to_state=ticket.state,
        note=note,
        data=data or {},
    )
    ticket.events.append(event)
    return event


def start_ticket(ticket: Ticket, actor: Actor, now: datetime, note: str | None = None) -> TicketEvent:
    """The first event of a new ticket: registered, from no state."""
    with state_door():
        ticket.state = TicketState.REGISTERED.value
    return record_event(ticket, actor, Action.REGISTER, now, None, note, {"channel": ticket.channel})


def replay(events: list[TicketEvent]) -> TicketState | None:
    """The state the event log leads to; raises if the log is not a chain of legal transitions."""
    state: TicketState | None = None
    for event in events:
        if (event.from_state or None) != (state.value if state else None):
            raise ValueError(f"event {event.seq} starts from {event.from_state}, log was at {state}")
        action = Action(event.action)
        if action != Action.REGISTER:
            transition = TRANSITIONS[action]
            expected = transition.target or state
            if state not in transition.sources or event.to_state != expected:
                raise ValueError(f"event {event.seq}: {action} from {state} to {event.to_state} is illegal")
        state = TicketState(event.to_state)
    return state


def supervise_in_bulk(session: Session, ticket_ids: list[int], actor: Actor, now: datetime, note: str) -> int:
    """The SUPERVISE transition for many tickets at once, set-based, for the SLA sweeps.

    Same checks as `apply_transition`: the actor's role, and only tickets in a source state; the
    state does not change, the event is recorded and the version bumped (so a concurrent editor of
    one of these tickets gets a conflict instead of overwriting the supervision).
    """
    transition = TRANSITIONS[Action.SUPERVISE]
    if actor.role not in transition.roles:
        raise NotPermitted(f"role {actor.role.value} may not supervise tickets", "无权督办")
    sources = [s.value for s in transition.sources]
    done = 0
    for start in range(0, len(ticket_ids), 500):
        chunk = ticket_ids[start : start + 500]
        eligible = and_(Ticket.id.in_(chunk), Ticket.state.in_(sources))
        # Lock the rows first (in id order, so two lockers cannot deadlock): a liaison acting on one of
        # them at this moment either finishes before (and the next event number sees it) or waits.
        session.execute(select(Ticket.id).where(eligible).order_by(Ticket.id).with_for_update())
        next_seq = (
            select(func.coalesce(func.max(TicketEvent.seq), 0) + 1)
            .where(TicketEvent.ticket_id == Ticket.id)
            .scalar_subquery()
        )
        rows = select(
            Ticket.id,
            next_seq,
            literal(Action.SUPERVISE.value),
            literal(actor.user_id, Integer),
            literal(actor.name),
            Ticket.lead_department_id,
            literal(now, DateTime),
            Ticket.state,
            Ticket.state,
            literal(note),
            literal({}, JSON),
        ).where(eligible)
        columns = ["ticket_id", "seq", "action", "actor_id", "actor_name", "department_id", "at"]
        columns += ["from_state", "to_state", "note", "data"]
        session.execute(insert(TicketEvent).from_select(columns, rows))
        result = session.execute(
            update(Ticket)
            .where(eligible)
            .values(
                supervision_count=Ticket.supervision_count + 1,
                version=Ticket.version + 1,
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        done += result.rowcount
    return done
