"""Seat states and call-detail records in the database (both backends): legal and illegal changes,
who may make them, the longest-idle seat, and the queue figures computed in SQL."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from callcenter.models import CallDirection, CallOutcome, CallRecord, SeatState, SeatStateChange
from callcenter.service import CallCenterError, CallRecords, SeatNotFound, SeatService, mask_phone
from callcenter.stats import queue_figures
from core.clock import ManualClock
from hotline.context import HotlineContext
from tests.callcenter.asr.conftest import write_wav
from tests.conftest import MONDAY_9, Staff

SEATS = ["1001", "1002", "1003"]


@pytest.fixture
def seats(ctx: HotlineContext) -> HotlineContext:
    with ctx.unit_of_work() as session:
        SeatService(session, ctx.clock).ensure_seats(SEATS)
    return ctx


def change(ctx: HotlineContext, ext: str, state: SeatState, **kw: object) -> str:
    with ctx.unit_of_work() as session:
        return SeatService(session, ctx.clock).change(ext, state, **kw).state  # type: ignore[arg-type]


def test_seats_follow_the_configuration(seats: HotlineContext) -> None:
    with seats.unit_of_work() as session:
        service = SeatService(session, seats.clock)
        assert [s.extension for s in service.all()] == SEATS
        assert all(s.state == "logged_out" for s in service.all())
        service.ensure_seats(["1001", "1003", "1004"])
        assert [s.extension for s in service.all()] == ["1001", "1003", "1004"]
        with pytest.raises(SeatNotFound):
            service.get("1002")


def test_an_operator_signs_in_takes_a_break_and_signs_out(seats: HotlineContext, staff: Staff) -> None:
    op = staff.operator.user_id
    assert change(seats, "1001", SeatState.READY, operator_id=op) == "ready"
    with seats.unit_of_work() as session:
        seat = SeatService(session, seats.clock).get("1001")
        assert seat.operator_id == op and seat.idle_since == MONDAY_9
    assert change(seats, "1001", SeatState.BREAK, reason="pause") == "break"
    assert change(seats, "1001", SeatState.LOGGED_OUT) == "logged_out"
    with seats.unit_of_work() as session:
        assert SeatService(session, seats.clock).get("1001").operator_id is None
        history = session.scalars(select(SeatStateChange.state).order_by(SeatStateChange.id)).all()
    assert history == ["ready", "break", "logged_out"]


@pytest.mark.parametrize(
    ("start", "target", "by_queue"),
    [
        (SeatState.READY, SeatState.TALKING, False),  # only the queue puts a seat on a call
        (SeatState.READY, SeatState.RINGING, False),
        (SeatState.LOGGED_OUT, SeatState.RINGING, True),  # the queue never rings a signed-out seat
        (SeatState.BREAK, SeatState.RINGING, True),
    ],
)
def test_illegal_seat_changes_are_refused_and_change_nothing(
    seats: HotlineContext, staff: Staff, start: SeatState, target: SeatState, by_queue: bool
) -> None:
    if start != SeatState.LOGGED_OUT:
        change(seats, "1002", start, operator_id=staff.operator.user_id)
    with pytest.raises(CallCenterError) as refused:
        change(seats, "1002", target, by_queue=by_queue)
    assert refused.value.status == 409 and "1002" in str(refused.value) and "不能改为" in refused.value.zh
    with seats.unit_of_work() as session:
        assert SeatService(session, seats.clock).get("1002").state == start.value


def test_a_talking_seat_cannot_sign_out(seats: HotlineContext, staff: Staff) -> None:
    change(seats, "1001", SeatState.READY, operator_id=staff.operator.user_id)
    change(seats, "1001", SeatState.RINGING, by_queue=True, call_uid="c1")
    change(seats, "1001", SeatState.TALKING, by_queue=True)
    with pytest.raises(CallCenterError):
        change(seats, "1001", SeatState.LOGGED_OUT)
    assert change(seats, "1001", SeatState.WRAP_UP, by_queue=True) == "wrap_up"
    assert change(seats, "1001", SeatState.READY) == "ready"  # the operator ends wrap-up early


def test_the_next_call_goes_to_the_seat_idle_longest(
    seats: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    people = {"1003": staff.supervisor, "1001": staff.operator, "1002": staff.operator2}
    for ext, person in people.items():  # ready in this order, five seconds apart
        change(seats, ext, SeatState.READY, operator_id=person.user_id)
        clock.advance(timedelta(seconds=5))
    with seats.unit_of_work() as session:
        service = SeatService(session, seats.clock)
        assert service.longest_idle_ready().extension == "1003"  # type: ignore[union-attr]
        assert service.longest_idle_ready(exclude={"1003"}).extension == "1001"  # type: ignore[union-attr]
        assert service.longest_idle_ready(exclude=set(SEATS)) is None


def test_signing_in_at_a_second_seat_signs_out_of_the_first(seats: HotlineContext, staff: Staff) -> None:
    op = staff.operator.user_id
    change(seats, "1001", SeatState.READY, operator_id=op)
    change(seats, "1002", SeatState.READY, operator_id=op)
    with seats.unit_of_work() as session:
        service = SeatService(session, seats.clock)
        assert service.get("1001").state == "logged_out" and service.get("1001").operator_id is None
        assert service.of_operator(op).extension == "1002"  # type: ignore[arg-type,union-attr]


def test_wrap_up_ends_after_the_configured_time(
    seats: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    change(seats, "1001", SeatState.READY, operator_id=staff.operator.user_id)
    change(seats, "1001", SeatState.RINGING, by_queue=True, call_uid="c1")
    change(seats, "1001", SeatState.TALKING, by_queue=True)
    change(seats, "1001", SeatState.WRAP_UP, by_queue=True)
    with seats.unit_of_work() as session:
        assert SeatService(session, seats.clock).wrap_ups_due(15) == []
    clock.advance(timedelta(seconds=15))
    with seats.unit_of_work() as session:
        assert SeatService(session, seats.clock).wrap_ups_due(15) == ["1001"]


def _call(
    ctx: HotlineContext,
    clock: ManualClock,
    uid: str,
    wait: float | None,
    outcome: CallOutcome,
    talk: float = 60,
) -> None:
    """One inbound call offered now, answered after `wait` seconds (None: never), ended after `talk`."""
    with ctx.unit_of_work() as session:
        records = CallRecords(session, clock)
        record = records.open(uid, "13800138000", "12345", "w001", CallDirection.INBOUND)
        offered = record.offered_at
        if wait is not None:
            record.answered_at = offered + timedelta(seconds=wait)
            record.outcome = CallOutcome.ANSWERED.value
        record.ended_at = offered + timedelta(seconds=(wait or 0) + talk)
        record.outcome = outcome.value


def test_queue_figures_are_computed_in_sql(ctx: HotlineContext, clock: ManualClock) -> None:
    _call(ctx, clock, "a", 5, CallOutcome.ANSWERED)
    _call(ctx, clock, "b", 14, CallOutcome.ANSWERED)
    _call(ctx, clock, "c", 40, CallOutcome.ANSWERED)
    _call(ctx, clock, "d", None, CallOutcome.ABANDONED, talk=25)
    _call(ctx, clock, "e", None, CallOutcome.CALLBACK_REQUESTED, talk=200)
    with ctx.unit_of_work() as session:
        figures = queue_figures(session, MONDAY_9 - timedelta(hours=1), MONDAY_9 + timedelta(hours=1))
        assert session.scalar(select(func.count()).select_from(CallRecord)) == 5
        empty = queue_figures(session, MONDAY_9 + timedelta(days=1), MONDAY_9 + timedelta(days=2))
    assert (figures.offered, figures.answered, figures.abandoned, figures.callback_requested) == (5, 3, 1, 1)
    assert figures.answer_rate == 0.6
    assert figures.average_speed_of_answer_seconds == pytest.approx(19.67, abs=0.01)
    assert figures.answered_within_15s_rate == pytest.approx(0.6667, abs=0.0001)
    assert figures.longest_wait_seconds == pytest.approx(200, abs=0.01)
    assert empty.offered == 0 and empty.answer_rate is None and empty.longest_wait_seconds is None


def test_closing_a_call_keeps_an_outcome_already_decided(ctx: HotlineContext, clock: ManualClock) -> None:
    with ctx.unit_of_work() as session:
        records = CallRecords(session, clock)
        records.open("x", "13800138000", "12345", "w001", CallDirection.INBOUND)
        records.get("x").outcome = CallOutcome.TRANSFERRED.value
        records.close("x", CallOutcome.ANSWERED, "citizen hung up", "citizen")
        again = records.close("x", CallOutcome.FAILED, "late duplicate", "system")
        assert again.outcome == "transferred" and again.hangup_cause == "citizen hung up"


@pytest.mark.parametrize(
    ("phone", "masked"),
    [("13812345678", "138****5678"), ("12345", "1***5"), ("", ""), (None, None), ("110", "1*0")],
)
def test_phone_numbers_are_masked(phone: str | None, masked: str | None) -> None:
    assert mask_phone(phone) == masked


def test_calls_left_open_by_a_dead_process_are_closed_at_start_with_their_recording(
    seats: HotlineContext, clock: ManualClock, tmp_path: Path
) -> None:
    """What a kill -9 of `hotline serve` leaves: calls in progress, a seat talking, a seat ringing and
    the recording's two halves not yet joined. The next controller closes and files all of it."""
    from callcenter.controller import Controller
    from callcenter.recording import TwoChannelRecording, describe

    ctx = seats
    ctx.settings.callcenter.recordings_dir = tmp_path / "recordings"
    with ctx.unit_of_work() as session:
        records = CallRecords(session, clock)
        talking = records.open("c-talk", "13800138000", "12345", "w001", CallDirection.INBOUND)
        talking.answered_at, talking.outcome = clock.now(), CallOutcome.ANSWERED.value
        records.open("c-wait", "13900139000", "12345", "w002", CallDirection.INBOUND)
        service = SeatService(session, clock)
        for ext, state in (("1001", SeatState.READY), ("1002", SeatState.READY)):
            service.change(ext, state)
        service.change("1001", SeatState.RINGING, by_queue=True, call_uid="c-talk")
        service.change("1001", SeatState.TALKING, by_queue=True, call_uid="c-talk")
        service.change("1002", SeatState.RINGING, by_queue=True, call_uid="c-wait")
        when = talking.answered_at
    parts = TwoChannelRecording.begin(tmp_path / "recordings", "c-talk", when)
    write_wav(parts.citizen_part, 8000, np.full(16000, 1000, dtype=np.int16))  # 2 s said, then the crash
    write_wav(parts.hotline_part, 8000, np.full(12000, -1000, dtype=np.int16))

    async def start_and_stop() -> None:
        controller = Controller(ctx, prompts=None)  # type: ignore[arg-type]  # no call is made
        await controller.start(tmp_path / "ctl.sock")
        await controller.stop()

    asyncio.run(start_and_stop())
    with ctx.unit_of_work() as session:
        closed = {r.uid: r for r in session.scalars(select(CallRecord))}
        states = {s.extension: s.state for s in SeatService(session, clock).all()}
    for uid in ("c-talk", "c-wait"):
        assert closed[uid].ended_at is not None and closed[uid].hangup_cause == "hotline restarted"
        assert closed[uid].outcome == "failed" and closed[uid].hangup_side == "system"
    kept = closed["c-talk"]
    assert kept.recording_path == str(parts.path) and not parts.citizen_part.exists()
    assert kept.recording_sha256 == describe(parts.path)["sha256"] and kept.recording_seconds == 2.0
    assert closed["c-wait"].recording_path is None
    assert states["1001"] == "wrap_up" and states["1002"] == "ready"
