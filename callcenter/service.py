"""Seat states and call-detail records in the database: the only door to both.

The queue controller and the pages change a seat's state only through `SeatService.change`, which
knows which changes are legal and who may make them; call records are opened, updated and closed
only through `CallRecords`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from datetime import datetime, tzinfo
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from callcenter.models import (
    SEAT_STATE_LABELS,
    CallDirection,
    CallEvent,
    CallOutcome,
    CallRecord,
    Seat,
    SeatState,
    SeatStateChange,
)
from callcenter.recording import TwoChannelRecording
from core.accounts.models import User
from core.clock import Clock
from core.errors import HotlineError


class CallCenterError(HotlineError):
    """A call-centre request was refused and nothing changed (same error shape as ticket errors)."""

    status = 409


class SeatNotFound(CallCenterError):
    status = 404


class CallNotFound(CallCenterError):
    status = 404


S = SeatState
# The hang-up cause of calls that were in progress when the hotline's process died.
RESTARTED = "hotline restarted"
# Changes an operator (or supervisor) may ask for; the queue makes the others.
OPERATOR_CHANGES: dict[SeatState, set[SeatState]] = {
    S.LOGGED_OUT: {S.READY, S.BREAK},
    S.READY: {S.BREAK, S.LOGGED_OUT},
    S.BREAK: {S.READY, S.LOGGED_OUT},
    S.WRAP_UP: {S.READY, S.BREAK, S.LOGGED_OUT},
    S.RINGING: set(),
    S.TALKING: set(),
}
QUEUE_CHANGES: dict[SeatState, set[SeatState]] = {
    S.READY: {S.RINGING},
    S.RINGING: {S.TALKING, S.BREAK, S.READY},  # answered / not answered / the caller left
    S.TALKING: {S.WRAP_UP},
    S.WRAP_UP: {S.READY},
}


def mask_phone(phone: str | None) -> str | None:
    """13812345678 -> 138****5678; short numbers keep their first and last digit."""
    if not phone:
        return phone
    if len(phone) >= 7:
        return f"{phone[:3]}****{phone[-4:]}"
    return phone[0] + "*" * (len(phone) - 2) + phone[-1] if len(phone) > 2 else "*" * len(phone)


class SeatService:
    def __init__(self, session: Session, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    def ensure_seats(self, extensions: Iterable[str]) -> None:
        """Create a row for every configured extension; seats no longer configured become inactive."""
        now = self.clock.now()
        wanted = list(extensions)
        existing = {seat.extension: seat for seat in self.session.scalars(select(Seat))}
        for number, extension in enumerate(wanted, start=1):
            seat = existing.get(extension)
            if seat is None:
                self.session.add(
                    Seat(
                        extension=extension,
                        label=f"{number:02d}号坐席",
                        state=S.LOGGED_OUT.value,
                        state_since=now,
                        active=True,
                    )
                )
            elif not seat.active:
                seat.active = True
        for extension, seat in existing.items():
            if extension not in wanted:
                seat.active = False
        self.session.flush()

    def get(self, extension: str, lock: bool = False) -> Seat:
        query = select(Seat).where(Seat.extension == extension, Seat.active.is_(True))
        seat = self.session.scalar(query.with_for_update() if lock else query)
        if seat is None:
            raise SeatNotFound(f"seat {extension} does not exist", f"坐席 {extension} 不存在")
        return seat

    def active(self) -> list[Seat]:
        return list(self.session.scalars(select(Seat).where(Seat.active).order_by(Seat.extension)))

    def holding(self, call_uid: str) -> Seat | None:
        """The seat ringing or talking on this call, if any."""
        return self.session.scalar(
            select(Seat).where(
                Seat.current_call_uid == call_uid, Seat.state.in_([S.RINGING.value, S.TALKING.value])
            )
        )

    def of_operator(self, operator_id: int) -> Seat | None:
        return self.session.scalar(select(Seat).where(Seat.operator_id == operator_id, Seat.active.is_(True)))

    def all(self) -> list[Seat]:
        return list(self.session.scalars(select(Seat).where(Seat.active.is_(True)).order_by(Seat.extension)))

    def change(
        self,
        extension: str,
        state: SeatState,
        *,
        by_queue: bool = False,
        reason: str | None = None,
        operator_id: int | None = None,
        call_uid: str | None = None,
    ) -> Seat:
        """Move a seat to `state`; the queue (`by_queue`) and people have different allowed moves."""
        seat = self.get(extension, lock=True)
        current = SeatState(seat.state)
        allowed = (QUEUE_CHANGES if by_queue else OPERATOR_CHANGES).get(current, set())
        if state != current and state not in allowed:
            raise CallCenterError(
                f"seat {extension} is {current.value}; it cannot change to {state.value}",
                f"坐席 {extension} 当前为「{SEAT_STATE_LABELS[current]}」，"
                f"不能改为「{SEAT_STATE_LABELS[state]}」",
            )
        now = self.clock.now()
        if current == S.LOGGED_OUT and operator_id is not None:
            self._sign_in(seat, operator_id)
        seat.state, seat.state_since, seat.reason = state.value, now, reason
        if state == S.READY:
            seat.idle_since = now
        if state in (S.RINGING, S.TALKING):
            seat.current_call_uid = call_uid or seat.current_call_uid
        elif state != S.WRAP_UP:
            seat.current_call_uid = None
        if state == S.LOGGED_OUT:
            seat.operator_id = None
        self.session.add(
            SeatStateChange(
                seat_id=seat.id, operator_id=seat.operator_id, state=state.value, reason=reason, at=now
            )
        )
        self.session.flush()
        return seat

    def _sign_in(self, seat: Seat, operator_id: int) -> None:
        """One operator sits at one seat at a time: signing in elsewhere signs out of the old seat."""
        self.session.execute(
            update(Seat)
            .where(Seat.operator_id == operator_id, Seat.id != seat.id, Seat.state.in_(["ready", "break"]))
            .values(operator_id=None, state=S.LOGGED_OUT.value, state_since=self.clock.now())
        )
        seat.operator_id = operator_id

    def longest_idle_ready(self, exclude: Iterable[str] = ()) -> Seat | None:
        """The next call goes to the ready seat idle the longest."""
        query = (
            select(Seat)
            .where(Seat.state == S.READY.value, Seat.active.is_(True), Seat.extension.not_in(list(exclude)))
            .order_by(Seat.idle_since.asc().nulls_first(), Seat.extension)
            .limit(1)
        )
        return self.session.scalar(query)

    def wrap_ups_due(self, seconds: float) -> list[str]:
        now = self.clock.now()
        return [
            seat.extension
            for seat in self.session.scalars(select(Seat).where(Seat.state == S.WRAP_UP.value))
            if (now - seat.state_since).total_seconds() >= seconds
        ]


class CallRecords:
    def __init__(self, session: Session, clock: Clock) -> None:
        self.session = session
        self.clock = clock

    def find(self, uid: str) -> CallRecord | None:
        return self.session.scalar(select(CallRecord).where(CallRecord.uid == uid))

    def get(self, uid: str) -> CallRecord:
        record = self.find(uid)
        if record is None:
            raise CallNotFound(f"call {uid} does not exist", f"通话 {uid} 不存在")
        return record

    def open(
        self,
        uid: str,
        caller: str,
        callee: str,
        worker: str,
        direction: CallDirection,
        sip_call_id: str | None = None,
        ticket_id: int | None = None,
    ) -> CallRecord:
        record = CallRecord(
            uid=uid,
            direction=direction.value,
            caller=caller[:64],
            callee=callee[:64],
            worker=worker,
            sip_call_id=(sip_call_id or "")[:128] or None,
            offered_at=self.clock.now(),
            outcome=CallOutcome.IN_PROGRESS.value,
            ticket_id=ticket_id,
        )
        self.session.add(record)
        self.session.flush()
        self.event(record, "offered", {"caller": caller, "worker": worker})
        return record

    def event(self, record: CallRecord, kind: str, detail: dict[str, Any] | None = None) -> None:
        self.session.add(CallEvent(call_id=record.id, at=self.clock.now(), kind=kind, detail=detail or {}))

    def queued(self, uid: str, position: int) -> None:
        record = self.get(uid)
        record.queued_at = record.queued_at or self.clock.now()
        record.queue_position = record.queue_position or position
        self.event(record, "queued", {"position": position})

    def answered(self, uid: str, seat: Seat) -> None:
        record = self.get(uid)
        record.answered_at = self.clock.now()
        record.seat_id, record.operator_id = seat.id, seat.operator_id
        record.outcome = CallOutcome.ANSWERED.value
        self.event(record, "answered", {"seat": seat.extension})

    def close(
        self,
        uid: str,
        outcome: CallOutcome | None,
        cause: str,
        side: str,
        recording: dict[str, Any] | None = None,
        at: datetime | None = None,
    ) -> CallRecord:
        """End a call; an outcome already decided (transferred, callback requested) is kept."""
        record = self.get(uid)
        if record.ended_at is not None:
            return record
        record.ended_at = at or self.clock.now()  # when the worker saw the call end
        if outcome is not None and record.outcome in (
            CallOutcome.IN_PROGRESS.value,
            CallOutcome.ANSWERED.value,
        ):
            record.outcome = outcome.value
        record.hangup_cause, record.hangup_side = cause[:128], side
        if recording:
            # a media host's recording may have been uploaded already: its stored path stays
            record.recording_path = recording["path"] or record.recording_path
            record.recording_bytes = recording["bytes"]
            record.recording_sha256 = recording["sha256"]
            record.recording_seconds = recording["seconds"]
        self.event(record, "ended", {"cause": cause, "side": side, "outcome": record.outcome})
        return record

    def link_ticket(self, uid: str, ticket_id: int, number: str) -> CallRecord:
        """The ticket this call became (the console registers it while talking or in wrap-up)."""
        record = self.get(uid)
        if record.ticket_id not in (None, ticket_id):
            raise CallCenterError(
                f"call {uid} already belongs to another ticket", f"通话 {uid} 已关联其他工单"
            )
        record.ticket_id = ticket_id
        self.event(record, "ticket", {"number": number})
        return record

    def recover_after_restart(
        self,
        recordings_dir: Path,
        zone: tzinfo | None = None,
        going_on: set[str] | frozenset[str] = frozenset(),
        cause_of: Callable[[CallRecord], str] | None = None,
    ) -> list[str]:
        """At start: every call a dead process left open is closed with the cause "hotline restarted",
        its partial recording joined and checksummed (what was recorded is kept), and the seats it held
        are freed; except the calls in `going_on` (a media host's worker still carries them).
        `cause_of` may name a better cause (the call's media host is unreachable). Returns the uids
        closed."""
        closed = []
        for record in list(self.session.scalars(select(CallRecord).where(CallRecord.ended_at.is_(None)))):
            if record.uid in going_on:
                continue
            recording = None
            with contextlib.suppress(OSError, ValueError):  # a part the crash left unreadable: no file
                when = record.answered_at or record.offered_at
                recording = TwoChannelRecording.begin(recordings_dir, record.uid, when, zone).finish()
            cause = cause_of(record) if cause_of else RESTARTED
            self.close(record.uid, CallOutcome.FAILED, cause, "system", recording)
            closed.append(record.uid)
        seats = SeatService(self.session, self.clock)
        held = select(Seat).where(Seat.state.in_([S.RINGING.value, S.TALKING.value]))
        for seat in list(self.session.scalars(held)):
            if seat.current_call_uid in going_on:
                continue
            target = S.READY if seat.state == S.RINGING.value else S.WRAP_UP
            seats.change(seat.extension, target, by_queue=True)
        return closed

    def open_records(self) -> list[CallRecord]:
        return list(self.session.scalars(select(CallRecord).where(CallRecord.ended_at.is_(None))))

    def open_on_worker(self, worker: str) -> list[CallRecord]:
        return list(
            self.session.scalars(
                select(CallRecord).where(CallRecord.worker == worker, CallRecord.ended_at.is_(None))
            )
        )


def seat_view(seat: Seat, caller: str | None = None, now: datetime | None = None) -> dict[str, Any]:
    state = SeatState(seat.state)
    return {
        "extension": seat.extension,
        "label": seat.label,
        "state": state.value,
        "state_label": SEAT_STATE_LABELS[state],
        "state_since": seat.state_since.isoformat(timespec="seconds"),
        "seconds_in_state": round((now - seat.state_since).total_seconds()) if now else None,
        "reason": seat.reason,
        "operator_id": seat.operator_id,
        "call_uid": seat.current_call_uid,
        "caller_masked": mask_phone(caller),
    }


def seat_board(session: Session, now: datetime) -> list[dict[str, Any]]:
    """The wallboard: every active seat, its operator's name and the current caller (masked)."""
    seats = list(session.scalars(select(Seat).where(Seat.active.is_(True)).order_by(Seat.extension)))
    uids = [s.current_call_uid for s in seats if s.current_call_uid]
    callers = dict(
        session.execute(select(CallRecord.uid, CallRecord.caller).where(CallRecord.uid.in_(uids))).all()
    )
    operators = [s.operator_id for s in seats if s.operator_id]
    names = dict(session.execute(select(User.id, User.display_name).where(User.id.in_(operators))).all())
    rows = []
    for seat in seats:
        row = seat_view(seat, callers.get(seat.current_call_uid or ""), now)
        row["operator"] = names.get(seat.operator_id) if seat.operator_id else None
        rows.append(row)
    return rows


def waiting_calls(session: Session, now: datetime) -> dict[str, Any]:
    """Queue length and longest wait from the call records (what any process can see)."""
    length, oldest = session.execute(
        select(func.count(), func.min(CallRecord.queued_at)).where(
            CallRecord.direction == CallDirection.INBOUND.value,
            CallRecord.answered_at.is_(None),
            CallRecord.ended_at.is_(None),
            CallRecord.queued_at.is_not(None),
        )
    ).one()
    longest = round((now - oldest).total_seconds(), 1) if oldest else 0.0
    return {"length": length, "longest_wait_seconds": longest, "callers": []}
