"""The ticket service: the one place the hotline's pages, API and jobs go to act on tickets.

Methods flush but never commit: the caller's unit of work commits, or rolls back on error.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, Protocol

from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from callcenter.asr.models import CallTranscript
from callcenter.models import CallRecord
from core.accounts.actor import Actor
from core.accounts.models import Role
from core.clock import Clock
from core.db import database_fault
from core.departments import Department
from core.errors import ConcurrentChange, HotlineError, NotFound, NotPermitted, RuleViolation
from dispatch import schemas
from dispatch.deadlines import DeadlinePolicy
from dispatch.errors import TicketNotFound
from dispatch.gazetteer import Gazetteer
from dispatch.models import (
    Category,
    SubCategory,
    Ticket,
    TicketCaller,
    TicketCounter,
    ticket_assisting_departments,
)
from dispatch.routing_words import router_for
from dispatch.state_machine import apply_transition, check_allowed, start_ticket
from dispatch.states import AT_DEPARTMENT, OPEN_STATES, STATE_LABELS, Action, TicketState


def mask_phone(phone: str | None) -> str | None:
    """138****5678: what a liaison may see of a citizen's number."""
    if not phone or len(phone) < 7:
        return phone
    return phone[:3] + "*" * (len(phone) - 7) + phone[-4:]


_LONG_NUMBER = re.compile(r"\d{7,}")


def mask_numbers(text: str | None) -> str | None:
    """Phone-length digit runs in free text masked as mask_phone does (138****5678)."""
    return _LONG_NUMBER.sub(lambda m: mask_phone(m.group()) or "", text) if text else text


def mask_name(name: str | None) -> str | None:
    """张三 -> 张** (what a department sees of a caller's name)."""
    return name[:1] + "**" if name else name


def is_overdue(ticket: Ticket, now: datetime) -> bool:
    return (
        ticket.deadline is not None and TicketState(ticket.state) in AT_DEPARTMENT and ticket.deadline < now
    )


def ticket_out(ticket: Ticket, now: datetime, mask: bool = False) -> schemas.TicketOut:
    return schemas.TicketOut(
        number=ticket.number,
        state=ticket.state,
        state_label=STATE_LABELS[TicketState(ticket.state)],
        channel=ticket.channel,
        caller_phone=mask_phone(ticket.caller_phone) if mask else ticket.caller_phone,
        caller_name=mask_name(ticket.caller_name) if mask else ticket.caller_name,
        address=ticket.address,
        content=ticket.content,
        category=ticket.category.name if ticket.category else None,
        subcategory=ticket.subcategory.name if ticket.subcategory else None,
        subcategory_id=ticket.subcategory_id,
        lead_department=ticket.lead_department,
        assisting_departments=ticket.assisting_departments,
        deadline=ticket.deadline,
        first_reply_due=ticket.first_reply_due,
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        dispatched_at=ticket.dispatched_at,
        signed_at=ticket.signed_at,
        replied_at=ticket.replied_at,
        closed_at=ticket.closed_at,
        reply_text=ticket.reply_text,
        return_reason=ticket.return_reason,
        kb_entry_id=ticket.kb_entry_id,
        reopen_count=ticket.reopen_count,
        supervision_count=ticket.supervision_count,
        extension_requested_days=ticket.extension_requested_days,
        extension_reason=ticket.extension_reason,
        callback_result=ticket.callback_result,
        merged_into=ticket.merged_into.number if ticket.merged_into else None,
        private=ticket.private,
        disclosure_consent=ticket.disclosure_consent,
        reply_approved_at=ticket.reply_approved_at,
        reply_approved_by=ticket.reply_approved_by,
        overdue=is_overdue(ticket, now),
        extra_callers=[
            schemas.CallerOut(
                phone=mask_phone(c.phone) if mask else c.phone,
                name=mask_name(c.name) if mask else c.name,
                content=(mask_numbers(c.content) or "") if mask else c.content,
                at=c.at,
                by=c.by,
                call_count=c.call_count,
            )
            for c in ticket.extra_callers
        ],
        repeat_calls=max([c.call_count for c in ticket.extra_callers], default=1),
    )


# A number that has called this many times about one matter is flagged (重复来电).
REPEAT_CALLS = 3


def calls_about(ticket: Ticket, phone: str | None) -> int:
    """How many times `phone` has called about the ticket's matter so far (its own call included)."""
    if not phone:
        return 0
    return int(ticket.caller_phone == phone) + sum(c.phone == phone for c in ticket.extra_callers)


def callers_of(ticket: Ticket) -> int:
    """Everyone who called about the matter: the ticket's caller and the further ones."""
    return 1 + len(ticket.extra_callers)


class RegistrationWatcher(Protocol):
    """Something a higher floor wants to know of each new ticket, in its transaction (the hotspot
    warning's sensitive-words lane)."""

    def registered(self, session: Session, ticket: Ticket) -> None: ...


class TicketService:
    def __init__(
        self,
        session: Session,
        rules: DeadlinePolicy,
        clock: Clock,
        number_digits: int = 4,
        review_replies: bool = False,
        places: Gazetteer | None = None,
        watchers: Sequence[RegistrationWatcher] = (),
    ) -> None:
        self.session = session
        self.rules = rules
        self.clock = clock
        self.number_digits = number_digits
        self.review_replies = review_replies  # config dispatch.review_replies
        self.places = places  # the county's gazetteer: where each new ticket's matter is
        self.watchers = watchers  # higher floors that look at every new ticket (sensitive words)
        # The router's suggestion kept with each dispatch (the 建议采纳率 statistic); bulk loads of
        # past tickets (the demo's history) turn it off, it is the slow part of a dispatch.
        self.suggestions = True

    # ---- reading -------------------------------------------------------------------------------

    def get(self, number: str, actor: Actor) -> Ticket:
        return self._visible(
            self.session.scalar(select(Ticket).where(Ticket.number == number)), number, actor
        )

    def _visible(self, ticket: Ticket | None, number: str, actor: Actor) -> Ticket:
        if ticket is None:
            raise TicketNotFound(f"ticket {number} does not exist", f"工单 {number} 不存在")
        if not self.can_see(ticket, actor):
            raise NotPermitted(
                f"ticket {number} belongs to another department", f"工单 {number} 不属于本部门"
            )
        return ticket

    @staticmethod
    def can_see(ticket: Ticket, actor: Actor) -> bool:
        if actor.role != Role.LIAISON:
            return True
        return ticket.lead_department_id == actor.department_id or any(
            d.id == actor.department_id for d in ticket.assisting_departments
        )

    def list(self, actor: Actor, flt: schemas.TicketFilter) -> tuple[list[Ticket], int]:
        conditions = self._filter_conditions(actor, flt)
        total = self.session.scalar(select(func.count()).select_from(Ticket).where(*conditions)) or 0
        order = (
            (Ticket.deadline.asc(), Ticket.id)
            if flt.overdue
            else (Ticket.created_at.desc(), Ticket.id.desc())
        )
        rows = self.session.scalars(
            select(Ticket).where(*conditions).order_by(*order).limit(flt.limit).offset(flt.offset)
        ).unique()
        return list(rows), total

    def _filter_conditions(self, actor: Actor, flt: schemas.TicketFilter) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if actor.role == Role.LIAISON:
            assisting = exists().where(
                ticket_assisting_departments.c.ticket_id == Ticket.id,
                ticket_assisting_departments.c.department_id == actor.department_id,
            )
            conditions.append(or_(Ticket.lead_department_id == actor.department_id, assisting))
        if flt.state:
            conditions.append(Ticket.state.in_([s.value for s in flt.state]))
        if flt.department:
            conditions.append(Ticket.lead_department_id == self._department(flt.department).id)
        if flt.category_id:
            conditions.append(Ticket.category_id == flt.category_id)
        if flt.created_from:
            conditions.append(Ticket.created_at >= datetime.combine(flt.created_from, datetime.min.time()))
        if flt.created_to:
            end = datetime.combine(flt.created_to, datetime.min.time()) + timedelta(days=1)
            conditions.append(Ticket.created_at < end)
        if flt.caller_phone:
            conditions.append(Ticket.caller_phone == flt.caller_phone)
        if flt.text:
            like = "%" + flt.text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            # what the caller said counts too: the transcripts of the ticket's calls
            said = exists(
                select(CallRecord.id)
                .join(CallTranscript, CallTranscript.call_record_id == CallRecord.id)
                .where(CallRecord.ticket_id == Ticket.id, CallTranscript.text.like(like, escape="\\"))
            )
            conditions.append(
                or_(
                    Ticket.number == flt.text,
                    Ticket.content.like(like, escape="\\"),
                    Ticket.address.like(like, escape="\\"),
                    said,
                )
            )
        if flt.overdue is not None:
            overdue = and_(
                Ticket.state.in_([s.value for s in AT_DEPARTMENT]), Ticket.deadline < self.clock.now()
            )
            conditions.append(overdue if flt.overdue else ~overdue)
        return conditions

    # ---- registering -------------------------------------------------------------------------

    def register(self, actor: Actor, data: schemas.TicketCreate) -> Ticket:
        if actor.role not in (Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN, Role.SYSTEM):
            raise NotPermitted(f"role {actor.role.value} may not register tickets", "无权登记工单")
        category_id, subcategory_id = data.category_id, data.subcategory_id
        if subcategory_id is not None:
            sub = self._subcategory(subcategory_id)
            if category_id is not None and category_id != sub.category_id:
                raise RuleViolation(
                    f"sub-category {subcategory_id} does not belong to category {category_id}",
                    "小类不属于所选大类",
                )
            category_id = sub.category_id
        elif category_id is not None and self.session.get(Category, category_id) is None:
            raise NotFound(f"category {category_id} does not exist", "所选大类不存在")
        now = self.clock.now()
        place = self.places.locate(data.address, data.content) if self.places else None
        ticket = Ticket(
            number=self._next_number(now),
            town_code=place.town_code if place else None,
            community_code=place.community_code if place else None,
            channel=data.channel.value,
            caller_phone=data.caller_phone,
            caller_name=data.caller_name,
            address=data.address,
            content=data.content,
            category_id=category_id,
            subcategory_id=subcategory_id,
            created_at=now,
            updated_at=now,
            reopen_count=0,
            supervision_count=0,
            extension_days_granted=0,
            private=data.private,
            disclosure_consent=data.disclosure_consent and not data.private,
            created_by_id=actor.user_id,
        )
        self.session.add(ticket)
        start_ticket(ticket, actor, now)
        self._flush()
        for watcher in self.watchers:
            watcher.registered(self.session, ticket)
        return ticket

    def _next_number(self, now: datetime) -> str:
        """Today's next serial, atomically (an upsert that locks the day's counter row)."""
        day = now.strftime("%Y%m%d")
        dialect = self.session.get_bind().dialect.name
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        statement = (
            insert(TicketCounter)
            .values(day=day, last=1)
            .on_conflict_do_update(index_elements=[TicketCounter.day], set_={"last": TicketCounter.last + 1})
            .returning(TicketCounter.last)
        )
        serial = self.session.execute(statement).scalar_one()
        return f"{day}-{serial:0{self.number_digits}d}"

    # ---- acting --------------------------------------------------------------------------------

    def act(self, number: str, actor: Actor, action: Action, body: BaseModel) -> Ticket:
        """Take `action` on ticket `number`; `body` is the action's schema from ACTION_BODIES."""
        expected = schemas.ACTION_BODIES.get(action)
        if expected is None:
            raise ValueError(f"{action.value} is not an action on an existing ticket")
        if not isinstance(body, expected):
            raise TypeError(f"{action.value} takes {expected.__name__}, not {type(body).__name__}")
        handler: Callable[[Ticket, Actor, Any, datetime], None] = getattr(self, f"_do_{action.value}")
        ticket = self._load_for_update(number, actor)
        # Role, department and state first, so the answer to an impossible action is always the
        # illegal-transition error, whatever its body says; the handler then checks the body.
        check_allowed(ticket, actor, action)
        # No autoflush inside the handler (record_event lazy-loads the events): the changes are
        # written by `_flush` below, which reports a lost race as ConcurrentChange, not a raw error.
        with self.session.no_autoflush:
            handler(ticket, actor, body, self.clock.now())
        self._flush()
        # Handlers set foreign keys (lead_department_id, subcategory_id …); the relationships loaded
        # with the ticket still hold the old objects, so reload them before anyone reads the ticket.
        self.session.refresh(ticket, ["category", "subcategory", "lead_department", "merged_into"])
        return ticket

    def _load_for_update(self, number: str, actor: Actor) -> Ticket:
        # FOR UPDATE: a second person acting at the same moment waits, then sees the new state and
        # gets a clear illegal-transition error. The version column catches what locks cannot (SQLite).
        statement = (
            select(Ticket)
            .where(Ticket.number == number)
            .with_for_update(of=Ticket)
            .execution_options(populate_existing=True)
        )
        try:
            ticket = self.session.scalar(statement)
        except DBAPIError as exc:
            raise self._fault(exc, number) from exc
        return self._visible(ticket, number, actor)

    def _flush(self) -> None:
        try:
            self.session.flush()
        except (StaleDataError, DBAPIError) as exc:
            raise self._fault(exc) from exc

    @classmethod
    def _fault(cls, exc: Exception, number: str | None = None) -> HotlineError:
        """A lost race says which ticket; a database that is down or full says that (503)."""
        fault = database_fault(exc)
        return cls._conflict(number) if isinstance(fault, ConcurrentChange) else fault

    @staticmethod
    def _conflict(number: str | None = None) -> ConcurrentChange:
        which = f"ticket {number}" if number else "the ticket"
        return ConcurrentChange(
            f"{which} was changed by someone else at the same moment; reload it and try again",
            "该工单刚被他人处理，请刷新后重试",
        )

    def _department(self, code: str) -> Department:
        department = self.session.scalar(select(Department).where(Department.code == code))
        if department is None or not department.active:
            raise NotFound(f"department {code!r} does not exist", f"部门 {code} 不存在")
        return department

    def _subcategory(self, subcategory_id: int) -> SubCategory:
        sub = self.session.get(SubCategory, subcategory_id)
        if sub is None or not sub.active:
            raise NotFound(f"sub-category {subcategory_id} does not exist", "所选小类不存在")
        return sub

    def _deadline_for(self, sub: SubCategory, at: datetime) -> tuple[datetime, datetime | None]:
        return self.rules.at_dispatch(sub.deadline_days, sub.category.handling == "emergency", at)

    def _dispatchable(self, sub_id: int) -> SubCategory:
        sub = self._subcategory(sub_id)
        if sub.category.handling == "on_the_spot":
            raise RuleViolation(
                f"{sub.category.name} is answered on the spot, not dispatched; choose another category",
                f"「{sub.category.name}」应直接答复，不能派单",
            )
        return sub

    # ---- one handler per action: validate everything first, then change --------------------

    def _do_answer_on_spot(
        self, t: Ticket, actor: Actor, body: schemas.AnswerOnSpotBody, now: datetime
    ) -> None:
        def effect(ticket: Ticket) -> None:
            ticket.reply_text, ticket.kb_entry_id, ticket.closed_at = body.answer, body.kb_entry_id, now
            ticket.reply_approved_at, ticket.reply_approved_by = now, actor.name  # the hotline's own answer

        apply_transition(
            t, actor, Action.ANSWER_ON_SPOT, now, body.answer, {"kb_entry_id": body.kb_entry_id}, effect
        )

    def _do_dispatch(self, t: Ticket, actor: Actor, body: schemas.DispatchBody, now: datetime) -> None:
        sub = self._dispatchable(body.subcategory_id)
        lead = self._department(body.department)
        assisting = [
            self._department(code) for code in dict.fromkeys(body.assisting) if code != body.department
        ]
        deadline, first_reply = self._deadline_for(sub, now)

        def effect(ticket: Ticket) -> None:
            ticket.category_id, ticket.subcategory_id = sub.category_id, sub.id
            ticket.lead_department_id, ticket.assisting_departments = lead.id, assisting
            ticket.dispatched_at, ticket.deadline, ticket.first_reply_due = now, deadline, first_reply

        data = {
            "department": lead.code,
            "assisting": [d.code for d in assisting],
            "deadline": deadline.isoformat(),
            # what the router suggested for the same text: the KPI of its agreement with the operator
            "suggested": self._suggestion(t.content) if self.suggestions else None,
        }
        apply_transition(t, actor, Action.DISPATCH, now, body.note, data, effect)

    def _suggestion(self, text: str) -> dict[str, Any] | None:
        try:  # the router with the admins' words, as the console suggested
            # as a dispatched call: a simple query it would have answered on the spot goes to a department
            c = router_for(self.session).classify(text).unanswered()
        except Exception:  # the suggestion is a statistic: it never stops a dispatch
            return None
        return {"category": c.category, "subcategory": c.subcategory, "department": c.department}

    def _do_sign(self, t: Ticket, actor: Actor, body: schemas.NoteBody, now: datetime) -> None:
        apply_transition(
            t, actor, Action.SIGN, now, body.note, None, lambda ticket: setattr(ticket, "signed_at", now)
        )

    def _do_reply(self, t: Ticket, actor: Actor, body: schemas.ReplyBody, now: datetime) -> None:
        def effect(ticket: Ticket) -> None:
            ticket.reply_text, ticket.replied_at = body.result, now
            if ticket.dispatched_at is not None:
                worked = self.rules.working_time_between(ticket.dispatched_at, now)
                ticket.handling_minutes = int(worked.total_seconds() // 60)
            ticket.extension_requested_days = ticket.extension_reason = None
            if self.review_replies:
                ticket.reply_approved_at = ticket.reply_approved_by = None  # waits for the review
            else:
                ticket.reply_approved_at, ticket.reply_approved_by = now, "无需审核"

        # Each reply is judged against the deadline it answered (a reopened ticket gets a new one).
        judged = {"deadline": t.deadline.isoformat(), "on_time": now <= t.deadline} if t.deadline else None
        apply_transition(t, actor, Action.REPLY, now, body.result, judged, effect)

    def _do_return(self, t: Ticket, actor: Actor, body: schemas.ReasonBody, now: datetime) -> None:
        def effect(ticket: Ticket) -> None:
            assert ticket.dispatched_at is not None
            if not self.rules.return_allowed(ticket.dispatched_at, now):
                days = self.rules.return_window_working_days
                until = f"{self.rules.return_deadline(ticket.dispatched_at):%Y-%m-%d %H:%M}"
                raise RuleViolation(
                    f"ticket {ticket.number} can only be returned within {days} working days "
                    f"of dispatch (until {until})",
                    f"派单后 {days} 个工作日内方可退单（截至 {until}）",
                )
            ticket.returned_at, ticket.return_reason = now, body.reason
            ticket.extension_requested_days = ticket.extension_reason = None

        apply_transition(t, actor, Action.RETURN, now, body.reason, None, effect)

    def _do_redispatch(self, t: Ticket, actor: Actor, body: schemas.RedispatchBody, now: datetime) -> None:
        lead = self._department(body.department)
        sub_id = body.subcategory_id or t.subcategory_id
        if sub_id is None:
            raise RuleViolation(f"ticket {t.number} has no sub-category; give one", "请选择工单小类")
        sub = self._dispatchable(sub_id)

        def effect(ticket: Ticket) -> None:
            if lead.id == ticket.lead_department_id and sub.id == ticket.subcategory_id and ticket.deadline:
                # Sent back to the same department (the return was not accepted): the time the ticket
                # spent at the hotline is not the department's; its return window does not restart.
                assert ticket.returned_at is not None
                emergency = sub.category.handling == "emergency"
                ticket.deadline = self.rules.after_time_returned(
                    ticket.deadline, ticket.returned_at, now, emergency
                )
                if emergency:
                    ticket.first_reply_due = ticket.deadline
            else:
                ticket.deadline, ticket.first_reply_due = self._deadline_for(sub, now)
                ticket.dispatched_at = now
            ticket.category_id, ticket.subcategory_id = sub.category_id, sub.id
            ticket.lead_department_id = lead.id
            ticket.assisting_departments = [d for d in ticket.assisting_departments if d.id != lead.id]
            ticket.returned_at = ticket.signed_at = None

        data = {"department": lead.code}
        apply_transition(t, actor, Action.REDISPATCH, now, body.note, data, effect)

    def _do_request_extension(
        self, t: Ticket, actor: Actor, body: schemas.ExtensionBody, now: datetime
    ) -> None:
        def effect(ticket: Ticket) -> None:
            limit = self.rules.max_extension_working_days
            if ticket.extension_requested_days is not None:
                raise RuleViolation(
                    f"ticket {ticket.number} already has an extension request waiting", "已有待审批的延期申请"
                )
            if body.days > limit:
                raise RuleViolation(
                    f"an extension adds at most {limit} working days (asked {body.days})",
                    f"延期最多 {limit} 个工作日",
                )
            ticket.extension_requested_days, ticket.extension_reason = body.days, body.reason

        apply_transition(t, actor, Action.REQUEST_EXTENSION, now, body.reason, {"days": body.days}, effect)

    def _pending_extension(self, ticket: Ticket) -> int:
        if ticket.extension_requested_days is None:
            raise RuleViolation(
                f"ticket {ticket.number} has no extension request", "该工单没有待审批的延期申请"
            )
        return ticket.extension_requested_days

    def _do_approve_extension(self, t: Ticket, actor: Actor, body: schemas.NoteBody, now: datetime) -> None:
        def effect(ticket: Ticket) -> None:
            days = self._pending_extension(ticket)
            assert ticket.deadline is not None
            ticket.deadline = self.rules.extended(ticket.deadline, days)
            ticket.extension_days_granted += days
            ticket.extension_requested_days = ticket.extension_reason = None

        data = {"days": t.extension_requested_days}
        apply_transition(t, actor, Action.APPROVE_EXTENSION, now, body.note, data, effect)

    def _do_refuse_extension(self, t: Ticket, actor: Actor, body: schemas.ReasonBody, now: datetime) -> None:
        def effect(ticket: Ticket) -> None:
            self._pending_extension(ticket)
            ticket.extension_requested_days = ticket.extension_reason = None

        apply_transition(t, actor, Action.REFUSE_EXTENSION, now, body.reason, None, effect)

    def _do_supervise(self, t: Ticket, actor: Actor, body: schemas.NoteBody, now: datetime) -> None:
        def effect(ticket: Ticket) -> None:
            ticket.supervision_count += 1

        apply_transition(t, actor, Action.SUPERVISE, now, body.note, None, effect)

    def _do_add_caller(self, t: Ticket, actor: Actor, body: schemas.AddCallerBody, now: datetime) -> None:
        calls = calls_about(t, body.caller_phone) + 1
        caller = TicketCaller(
            phone=body.caller_phone,
            name=body.caller_name,
            content=body.content,
            call_uid=body.call_uid,
            at=now,
            by=actor.name,
            call_count=calls,
        )
        data = {"calls": calls, "repeat": calls >= REPEAT_CALLS, "callers": callers_of(t) + 1}
        apply_transition(
            t, actor, Action.ADD_CALLER, now, body.content, data, lambda tk: tk.extra_callers.append(caller)
        )

    def _do_record_callback(self, t: Ticket, actor: Actor, body: schemas.CallbackBody, now: datetime) -> None:
        def effect(ticket: Ticket) -> None:
            ticket.callback_result, ticket.closed_at = body.result, now

        data = {"result": body.result, "solved": body.solved}
        apply_transition(t, actor, Action.RECORD_CALLBACK, now, body.note, data, effect)
        if body.result == "dissatisfied":
            # 重办: a dissatisfied citizen sends the ticket back to the same department.
            reopen = schemas.ReasonBody(reason="回访不满意，重新办理")
            self._do_reopen(t, Actor.system(), reopen, now)

    def _do_reopen(self, t: Ticket, actor: Actor, body: schemas.ReasonBody, now: datetime) -> None:
        sub = t.subcategory

        def effect(ticket: Ticket) -> None:
            if sub is None or ticket.lead_department_id is None:
                raise RuleViolation(f"ticket {ticket.number} was never dispatched", "该工单未派单，无法重办")
            ticket.deadline, ticket.first_reply_due = self._deadline_for(sub, now)
            ticket.reopen_count += 1
            ticket.reply_text = ticket.replied_at = ticket.closed_at = None
            ticket.reply_approved_at = ticket.reply_approved_by = None
            ticket.signed_at = now

        apply_transition(t, actor, Action.REOPEN, now, body.reason, None, effect)

    def _do_approve_reply(self, t: Ticket, actor: Actor, body: schemas.NoteBody, now: datetime) -> None:
        def effect(ticket: Ticket) -> None:
            ticket.reply_approved_at, ticket.reply_approved_by = now, actor.name[:64]

        apply_transition(t, actor, Action.APPROVE_REPLY, now, body.note, None, effect)

    def _do_reject_reply(self, t: Ticket, actor: Actor, body: schemas.ReasonBody, now: datetime) -> None:
        """Back to the department to answer again (the rejected reply stays in the event log)."""

        def effect(ticket: Ticket) -> None:
            ticket.reply_text = ticket.replied_at = ticket.handling_minutes = None

        apply_transition(t, actor, Action.REJECT_REPLY, now, body.reason, None, effect)

    def _do_archive(self, t: Ticket, actor: Actor, body: schemas.NoteBody, now: datetime) -> None:
        apply_transition(
            t, actor, Action.ARCHIVE, now, body.note, None, lambda ticket: setattr(ticket, "closed_at", now)
        )

    def _do_merge(self, t: Ticket, actor: Actor, body: schemas.MergeBody, now: datetime) -> None:
        if body.into == t.number:
            raise RuleViolation(f"ticket {t.number} cannot be merged into itself", "不能并入自身")
        survivor = self._load_for_update(body.into, actor)
        if TicketState(survivor.state) not in OPEN_STATES:
            raise RuleViolation(
                f"ticket {survivor.number} is {survivor.state}; merge only into an open ticket",
                f"工单 {survivor.number} 已办结，不能并入",
            )

        def effect(ticket: Ticket) -> None:
            ticket.merged_into_id, ticket.closed_at = survivor.id, now

        apply_transition(t, actor, Action.MERGE, now, body.note, {"into": survivor.number}, effect)
        apply_transition(survivor, actor, Action.ABSORB_DUPLICATE, now, body.note, {"duplicate": t.number})
