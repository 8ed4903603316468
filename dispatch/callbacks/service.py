"""The callback queue: which replied ticket is called when, by whom, and what came of it.

Rules kept here, in the database:
- every ticket that reaches `replied` gets one callback per round (a reopened ticket replied again
  gets another); emergency and complex tickets (config) need a person, the others the survey call;
- calls only within the calling hours, never to a number that opted out;
- at most `max_attempts` attempts at spaced times, then `unreachable` for a supervisor;
- nothing twice: an attempt is claimed (a row of `callback_attempts`, unique per callback and number,
  and the callback set to `calling`) and committed before anyone dials. Another process skips the
  claimed row; after a restart the claim is found stale and the attempt counts as interrupted, so it is
  never placed again;
- results go through the ticket state machine (`record_callback`; dissatisfied reopens the ticket).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, case, exists, insert, literal, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from core.accounts.actor import Actor
from core.clock import Clock
from core.errors import HotlineError
from dispatch import schemas
from dispatch.callbacks.models import (
    AttemptOutcome,
    Callback,
    CallbackAttempt,
    CallbackMode,
    CallbackState,
    PhoneOptOut,
)
from dispatch.callbacks.settings import CallbackSettings
from dispatch.errors import IllegalTransition
from dispatch.models import Category, Ticket, TicketCaller, TicketEvent
from dispatch.service import TicketService
from dispatch.states import Action, TicketState

if TYPE_CHECKING:
    from dispatch.context import DispatchContext

Result = str  # "satisfied" | "basically_satisfied" | "dissatisfied"
DIGIT_RESULTS: dict[str, Result] = {"1": "satisfied", "2": "basically_satisfied", "3": "dissatisfied"}
OPEN = (CallbackState.PENDING.value, CallbackState.UNREACHABLE.value)


class CallbackError(HotlineError):
    """A callback request was refused and nothing changed."""

    status = 409


class CallbackNotFound(CallbackError):
    status = 404


class BadCallbackInput(CallbackError):
    """The request itself is incomplete or contradictory (e.g. answered without a result)."""

    status = 422


class OutsideCallingHours(CallbackError):
    status = 422


def process_name() -> str:
    """Who claims: host and process id, shown on the claimed row."""
    return f"{socket.gethostname()}:{os.getpid()}"[:64]


@dataclass(frozen=True)
class Claim:
    """One claimed attempt: the caller of `finish` reports how it went."""

    callback_id: int
    attempt_id: int
    attempt: int
    ticket_id: int
    ticket_number: str
    phone: str | None
    reply_text: str | None


class CallingHours:
    def __init__(self, settings: CallbackSettings) -> None:
        self.start, self.end = settings.hours

    def contains(self, at: datetime) -> bool:
        return self.start <= at.time() < self.end

    def next_opening(self, at: datetime) -> datetime:
        """`at` itself when inside the hours, else the next start of the calling hours."""
        if self.contains(at):
            return at
        day = at.date() if at.time() < self.start else at.date() + timedelta(days=1)
        return datetime.combine(day, self.start)


def require_calling_hours(settings: CallbackSettings, now: datetime) -> None:
    """Refuse a call outside the calling hours, saying which they are."""
    if not CallingHours(settings).contains(now):
        start, end = settings.hours
        raise OutsideCallingHours(
            f"callbacks are placed between {start:%H:%M} and {end:%H:%M} only",
            f"回访/回拨时间为 {start:%H:%M}-{end:%H:%M}，当前不在时间内",
        )


class CallbackService:
    def __init__(
        self, session: Session, settings: CallbackSettings, clock: Clock, tickets: TicketService
    ) -> None:
        self.session = session
        self.settings = settings
        self.clock = clock
        self.tickets = tickets
        self.hours = CallingHours(settings)

    # ---- the queue fills from the tickets ------------------------------------------------------

    def enqueue_replied(self) -> int:
        """One callback for every replied ticket that has none for its round yet (set-based), and one
        for each further caller of it (附加来电) with a number."""
        now = self.clock.now()
        round_ = Ticket.reopen_count + 1
        person = or_(
            Ticket.caller_phone.is_(None),
            Category.handling.in_(self.settings.person_required_handlings),
        )
        own = self._due_rows(Ticket.caller_phone, person, literal(0), now).where(
            ~exists().where(
                Callback.ticket_id == Ticket.id, Callback.round == round_, Callback.extra_caller_id == 0
            )
        )
        extra_person = Category.handling.in_(self.settings.person_required_handlings)
        extra = (
            self._due_rows(TicketCaller.phone, extra_person, TicketCaller.id, now)
            .join(TicketCaller, TicketCaller.ticket_id == Ticket.id)
            .where(
                TicketCaller.phone.is_not(None),
                ~exists().where(
                    Callback.ticket_id == Ticket.id,
                    Callback.round == round_,
                    Callback.extra_caller_id == TicketCaller.id,
                ),
            )
        )
        columns = ["ticket_id", "round", "phone", "mode", "state", "attempts", "next_attempt_at"]
        added = 0
        for rows in (own, extra):
            try:
                with self.session.begin_nested():
                    added += len(
                        self.session.execute(
                            insert(Callback)
                            .from_select([*columns, "created_at", "extra_caller_id"], rows)
                            .returning(Callback.id)
                        ).all()
                    )
            except IntegrityError:  # another process enqueued the same tickets this instant
                continue
        self._cancel_settled()
        return added

    def _due_rows(self, phone: Any, person: Any, extra_caller: Any, now: datetime) -> Any:
        """Rows of new callbacks to `phone` of the replied (and reviewed) tickets."""
        opted_out = exists().where(PhoneOptOut.phone == phone)
        return (
            select(
                Ticket.id,
                Ticket.reopen_count + 1,
                phone,
                case((person, CallbackMode.PERSON.value), else_=CallbackMode.AUTO.value),
                case((opted_out, CallbackState.OPTED_OUT.value), else_=CallbackState.PENDING.value),
                literal(0),
                literal(self.hours.next_opening(now)),
                literal(now),
                extra_caller,
            )
            .select_from(Ticket)
            .outerjoin(Category, Category.id == Ticket.category_id)
            .where(
                Ticket.state == TicketState.REPLIED.value,
                Ticket.reply_approved_at.is_not(None),  # the hotline reviewed the reply first
            )
        )

    def _cancel_settled(self) -> None:
        """Callbacks whose ticket left `replied` another way. A result recorded on the ticket itself
        (the generic record_callback action) counts as this callback done, with that result; anything
        else (archived without a survey, merged …) cancels it."""
        now = self.clock.now()
        # A further caller is still asked once the first caller's answer archived the ticket.
        still_asked = case(
            (Callback.extra_caller_id == 0, literal(TicketState.REPLIED.value)),
            else_=literal(TicketState.ARCHIVED.value),
        )
        settled = exists().where(
            Ticket.id == Callback.ticket_id,
            Ticket.state != TicketState.REPLIED.value,
            Ticket.state != still_asked,
        )
        surveyed = exists().where(
            TicketEvent.ticket_id == Callback.ticket_id,
            TicketEvent.action == Action.RECORD_CALLBACK.value,
            TicketEvent.at >= Callback.created_at,
        )
        ticket_result = (
            select(Ticket.callback_result).where(Ticket.id == Callback.ticket_id).scalar_subquery()
        )
        self.session.execute(
            update(Callback)
            .where(Callback.state.in_(OPEN), Callback.extra_caller_id == 0, settled, surveyed)
            .values(state=CallbackState.DONE.value, result=ticket_result, channel="manual", finished_at=now)
            .execution_options(synchronize_session=False)
        )
        self.session.execute(
            update(Callback)
            .where(Callback.state.in_(OPEN), settled)
            .values(state=CallbackState.CANCELLED.value, finished_at=now)
            .execution_options(synchronize_session=False)
        )

    # ---- claiming ------------------------------------------------------------------------------

    def claim_next(self, claimer: str, mode: CallbackMode = CallbackMode.AUTO) -> Claim | None:
        """Claim the oldest due callback of `mode` for one attempt; None when nothing is due (or the
        calling hours are over). The caller commits before dialling."""
        now = self.clock.now()
        if not self.hours.contains(now):
            return None
        due = (
            select(Callback.id)
            .where(
                Callback.state == CallbackState.PENDING.value,
                Callback.mode == mode.value,
                Callback.next_attempt_at <= now,
                ~exists().where(PhoneOptOut.phone == Callback.phone),
            )
            .order_by(Callback.next_attempt_at, Callback.id)
            .limit(1)
            .with_for_update(skip_locked=True)
            .scalar_subquery()
        )
        return self._claim(and_(Callback.id == due, Callback.state == CallbackState.PENDING.value), claimer)

    def claim(self, callback_id: int, claimer: str, user_id: int | None = None) -> Claim:
        """Claim one given callback for an operator's call (pending or unreachable ones)."""
        require_calling_hours(self.settings, self.clock.now())
        callback = self.get(callback_id)
        if callback.phone and self.is_opted_out(callback.phone):
            raise CallbackError(
                f"number of callback {callback_id} opted out of callbacks", "该号码已拒绝回访，不能拨打"
            )
        claim = self._claim(and_(Callback.id == callback_id, Callback.state.in_(OPEN)), claimer, user_id)
        if claim is None:
            raise CallbackError(
                f"callback {callback_id} is {callback.state}: somebody is calling or it is finished",
                "该回访正在拨打或已完成",
            )
        return claim

    def _claim(self, condition: Any, claimer: str, user_id: int | None = None) -> Claim | None:
        now = self.clock.now()
        row = self.session.execute(
            update(Callback)
            .where(condition)
            .values(
                state=CallbackState.CALLING.value,
                attempts=Callback.attempts + 1,
                claimed_by=claimer,
                claimed_at=now,
            )
            .returning(Callback.id, Callback.attempts, Callback.ticket_id, Callback.phone)
            .execution_options(synchronize_session=False)
        ).first()
        if row is None:
            return None
        callback_id, number, ticket_id, phone = row
        attempt = CallbackAttempt(
            callback_id=callback_id,
            number=number,
            channel="manual" if user_id else "phone",
            claimed_by=claimer,
            started_at=now,
            outcome=AttemptOutcome.CALLING.value,
            user_id=user_id,
        )
        self.session.add(attempt)
        self.session.flush()  # the unique (callback, number) refuses a second claim of this attempt
        ticket_number, reply = self.session.execute(
            select(Ticket.number, Ticket.reply_text).where(Ticket.id == ticket_id)
        ).one()
        return Claim(callback_id, attempt.id, number, ticket_id, ticket_number, phone, reply)

    # ---- results -------------------------------------------------------------------------------

    def finish(
        self,
        claim: Claim,
        outcome: AttemptOutcome,
        result: Result | None = None,
        *,
        solved: bool | None = None,
        note: str | None = None,
        call_uid: str | None = None,
        digits: str | None = None,
        actor: Actor | None = None,
    ) -> Callback:
        """Close the claimed attempt; a result is recorded on the ticket, a failure schedules the next
        attempt or marks the callback unreachable."""
        if outcome == AttemptOutcome.ANSWERED and result is None:
            raise ValueError("an answered attempt needs a result")
        now = self.clock.now()
        closed = self.session.execute(
            update(CallbackAttempt)
            .where(
                CallbackAttempt.id == claim.attempt_id,
                CallbackAttempt.outcome == AttemptOutcome.CALLING.value,
            )
            .values(ended_at=now, outcome=outcome.value, call_uid=call_uid, digits=digits)
            .execution_options(synchronize_session=False)
        )
        if closed.rowcount != 1:
            raise CallbackError(
                f"attempt {claim.attempt} of callback {claim.callback_id} was already closed",
                "该次回访已结束（可能已超时被收回），结果未重复记录",
            )
        callback = self.get(claim.callback_id)
        if callback.state != CallbackState.CALLING.value:
            return callback  # settled meanwhile another way (the web link): that answer stands
        channel = "manual" if actor and actor.user_id else "phone"
        if result is not None:
            self._record(callback, result, solved, note, channel, actor or Actor.system("自动回访"))
        else:
            self._failed(callback, now)
        return callback

    def record_web(self, callback: Callback, result: Result, solved: bool | None, note: str | None) -> None:
        """A result from the web survey page (the link was checked and spent by the caller)."""
        if callback.state not in (*OPEN, CallbackState.CALLING.value):
            raise CallbackError(f"callback {callback.id} is {callback.state}", "该回访已完成")
        self._record(callback, result, solved, note, "web", Actor.system("网上回访"))

    def _record(
        self,
        callback: Callback,
        result: Result,
        solved: bool | None,
        note: str | None,
        channel: str,
        actor: Actor,
    ) -> None:
        body = schemas.CallbackBody(result=result, solved=solved, note=note)  # type: ignore[arg-type]
        now = self.clock.now()
        if callback.extra_caller_id:
            # A further caller's answer is kept on the callback: the ticket's own caller settles it.
            callback.state = CallbackState.DONE.value
        else:
            try:
                self.tickets.act(callback.ticket.number, actor, Action.RECORD_CALLBACK, body)
            except IllegalTransition:
                # Archived or merged meanwhile: keep what the citizen said, change nothing else.
                callback.state = CallbackState.CANCELLED.value
            else:
                callback.state = CallbackState.DONE.value
        callback.result, callback.solved, callback.note, callback.channel = result, solved, note, channel
        callback.finished_at, callback.claimed_by = now, None

    def _failed(self, callback: Callback, now: datetime) -> None:
        callback.claimed_by = None
        if callback.phone and self.is_opted_out(callback.phone):  # opted out during the call
            callback.state, callback.finished_at = CallbackState.OPTED_OUT.value, now
            return
        if callback.attempts >= self.settings.max_attempts:
            callback.state, callback.finished_at = CallbackState.UNREACHABLE.value, now
            return
        spacing = self.settings.retry_minutes
        minutes = spacing[min(callback.attempts, len(spacing)) - 1]
        callback.state = CallbackState.PENDING.value
        callback.next_attempt_at = self.hours.next_opening(now + timedelta(minutes=minutes))

    def recover_stale(self) -> list[Callback]:
        """Claims older than `claim_stale_minutes` belong to a process that stopped: their attempt is
        closed as interrupted (never dialled again) and the callback rescheduled like a failure."""
        now = self.clock.now()
        limit = now - timedelta(minutes=self.settings.claim_stale_minutes)
        stale = list(
            self.session.scalars(
                select(Callback)
                .where(Callback.state == CallbackState.CALLING.value, Callback.claimed_at < limit)
                .with_for_update(skip_locked=True, of=Callback)
            )
        )
        for callback in stale:
            self.session.execute(
                update(CallbackAttempt)
                .where(
                    CallbackAttempt.callback_id == callback.id,
                    CallbackAttempt.outcome == AttemptOutcome.CALLING.value,
                )
                .values(outcome=AttemptOutcome.INTERRUPTED.value, ended_at=now)
                .execution_options(synchronize_session=False)
            )
            self._failed(callback, now)
        return stale

    # ---- opt-out -------------------------------------------------------------------------------

    def opt_out(self, phone: str, reason: str | None = None) -> int:
        """The number is never called back again; its open callbacks are closed as opted out."""
        if self.session.get(PhoneOptOut, phone) is None:
            self.session.add(PhoneOptOut(phone=phone, at=self.clock.now(), reason=reason))
        result = self.session.execute(
            update(Callback)
            .where(Callback.phone == phone, Callback.state.in_(OPEN))
            .values(state=CallbackState.OPTED_OUT.value, finished_at=self.clock.now())
            .execution_options(synchronize_session=False)
        )
        return result.rowcount or 0

    def is_opted_out(self, phone: str) -> bool:
        return self.session.get(PhoneOptOut, phone) is not None

    # ---- reading -------------------------------------------------------------------------------

    def get(self, callback_id: int) -> Callback:
        callback = self.session.get(Callback, callback_id, populate_existing=True)
        if callback is None:
            raise CallbackNotFound(f"callback {callback_id} does not exist", f"回访 {callback_id} 不存在")
        return callback

    def listing(self, states: list[str], mode: str | None = None, limit: int = 100) -> list[Callback]:
        query = select(Callback).where(Callback.state.in_(states))
        if mode:
            query = query.where(Callback.mode == mode)
        return list(self.session.scalars(query.order_by(Callback.next_attempt_at, Callback.id).limit(limit)))

    def attempts(self, callback_id: int) -> list[CallbackAttempt]:
        return list(
            self.session.scalars(
                select(CallbackAttempt)
                .where(CallbackAttempt.callback_id == callback_id)
                .order_by(CallbackAttempt.number)
            )
        )


def callbacks_of(ctx: DispatchContext, session: Session) -> CallbackService:
    """The callback service of a running hotline, on `session`."""
    return CallbackService(session, ctx.settings.callbacks, ctx.clock, ctx.tickets(session))
