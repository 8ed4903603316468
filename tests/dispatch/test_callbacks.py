"""The callback queue on both databases with a controllable clock: enqueueing replied tickets, calling
hours, claims, retries and their times, unreachable, opt-out, results through the state machine
(dissatisfied reopens), person-required tickets, the web link, the SMS backends and the figures."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from core.accounts.actor import Actor
from core.accounts.models import Role
from core.clock import ManualClock
from core.departments import Department
from dispatch import schemas
from dispatch.callbacks.links import LinkRefused, create_link, open_link, send_survey_link, spend_link
from dispatch.callbacks.missed import MissedOutcome, missed_calls, record_missed_outcome
from dispatch.callbacks.models import AttemptOutcome, Callback, SmsMessage
from dispatch.callbacks.service import CallbackError, Claim, OutsideCallingHours, callbacks_of
from dispatch.callbacks.sms import FileSms, HttpSms, send_sms
from dispatch.callbacks.stats import callback_figures
from dispatch.errors import IllegalTransition
from dispatch.models import Ticket
from dispatch.states import Action
from hotline.context import HotlineContext
from tests.conftest import MONDAY_9, Staff
from tests.helpers import act, dispatched, load


def replied(ctx: HotlineContext, staff: Staff, sub: str = "停水", department: str = "sw") -> str:
    """A ticket dispatched, signed and replied to by `department`."""
    number = dispatched(ctx, staff, sub, department)
    with ctx.unit_of_work() as session:
        dept_id = session.scalar(select(Department.id).where(Department.code == department))
    liaison = Actor(None, f"{department}联络员", Role.LIAISON, dept_id)
    act(ctx, number, liaison, Action.SIGN, schemas.NoteBody())
    act(ctx, number, liaison, Action.REPLY, schemas.ReplyBody(result="已抢修恢复供水"))
    return number


def enqueue(ctx: HotlineContext) -> int:
    with ctx.unit_of_work() as session:
        return callbacks_of(ctx, session).enqueue_replied()


def claim(ctx: HotlineContext, claimer: str = "test") -> Claim | None:
    with ctx.unit_of_work() as session:
        return callbacks_of(ctx, session).claim_next(claimer)


def finish(ctx: HotlineContext, got: Claim, outcome: AttemptOutcome, result: str | None = None) -> Callback:
    with ctx.unit_of_work() as session:
        return callbacks_of(ctx, session).finish(got, outcome, result)


def callback_of(ctx: HotlineContext, number: str) -> Callback:
    with ctx.unit_of_work() as session:
        row = session.scalar(
            select(Callback).join(Ticket).where(Ticket.number == number).order_by(Callback.round.desc())
        )
        assert row is not None
        return row


def test_a_replied_ticket_is_queued_once_and_claimed_before_dialling(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    number = replied(ctx, staff)
    assert enqueue(ctx) == 1
    assert enqueue(ctx) == 0  # once per round
    got = claim(ctx, "proc-a")
    assert got is not None and (got.ticket_number, got.attempt, got.phone) == (number, 1, "13900001111")
    assert claim(ctx, "proc-b") is None  # claimed: nobody else gets it
    row = callback_of(ctx, number)
    assert (row.state, row.attempts, row.claimed_by, row.mode) == ("calling", 1, "proc-a", "auto")

    finish(ctx, got, AttemptOutcome.ANSWERED, "satisfied")
    ticket = load(ctx, number)
    assert (ticket.state, ticket.callback_result) == ("archived", "satisfied")
    assert ticket.events[-1].action == "record_callback" and ticket.events[-1].actor_name == "自动回访"
    assert callback_of(ctx, number).state == "done"
    with pytest.raises(CallbackError):  # the same attempt cannot be closed twice
        finish(ctx, got, AttemptOutcome.ANSWERED, "dissatisfied")
    assert load(ctx, number).state == "archived"


def test_dissatisfied_reopens_to_the_same_department_with_a_fresh_deadline(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    number = replied(ctx, staff)
    before = load(ctx, number)
    enqueue(ctx)
    clock.advance(timedelta(days=2))  # Wednesday 09:00
    got = claim(ctx)
    assert got is not None
    finish(ctx, got, AttemptOutcome.ANSWERED, "dissatisfied")
    after = load(ctx, number)
    assert after.state == "in_progress" and after.reopen_count == 1
    assert after.lead_department_id == before.lead_department_id
    assert after.deadline is not None and before.deadline is not None and after.deadline > before.deadline
    assert [e.action for e in after.events[-2:]] == ["record_callback", "reopen"]
    # replied again: a second round of callback
    with ctx.unit_of_work() as session:
        dept = session.get(Department, after.lead_department_id)
        assert dept is not None
    liaison = Actor(None, "sw", Role.LIAISON, after.lead_department_id)
    act(ctx, number, liaison, Action.REPLY, schemas.ReplyBody(result="再次上门处理"))
    assert enqueue(ctx) == 1
    assert callback_of(ctx, number).round == 2


def test_failed_attempts_are_retried_at_spaced_times_then_unreachable(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    number = replied(ctx, staff)
    enqueue(ctx)
    got = claim(ctx)
    assert got is not None
    finish(ctx, got, AttemptOutcome.NO_ANSWER)
    row = callback_of(ctx, number)
    assert (row.state, row.attempts, row.next_attempt_at) == ("pending", 1, MONDAY_9 + timedelta(minutes=60))
    assert claim(ctx) is None  # not due yet
    clock.advance(timedelta(minutes=60))
    got = claim(ctx)
    assert got is not None and got.attempt == 2
    finish(ctx, got, AttemptOutcome.BUSY)
    row = callback_of(ctx, number)
    assert row.next_attempt_at == clock.now() + timedelta(minutes=240)
    clock.set(row.next_attempt_at)
    got = claim(ctx)
    assert got is not None and got.attempt == 3
    finish(ctx, got, AttemptOutcome.NO_INPUT)
    row = callback_of(ctx, number)
    assert (row.state, row.attempts) == ("unreachable", 3)
    clock.advance(timedelta(days=1))
    assert claim(ctx) is None
    with ctx.unit_of_work() as session:
        outcomes = [a.outcome for a in callbacks_of(ctx, session).attempts(row.id)]
    assert outcomes == ["no_answer", "busy", "no_input"]
    assert load(ctx, number).state == "replied"  # the supervisor decides


def test_calls_only_within_calling_hours(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    clock.set(datetime(2026, 11, 16, 19, 30))
    number = replied(ctx, staff)
    enqueue(ctx)
    got = claim(ctx)
    assert got is not None
    finish(ctx, got, AttemptOutcome.NO_ANSWER)  # retry in 60 min would be 20:30: moved to 09:00
    assert callback_of(ctx, number).next_attempt_at == datetime(2026, 11, 17, 9, 0)
    clock.set(datetime(2026, 11, 17, 8, 59))
    assert claim(ctx) is None
    clock.set(datetime(2026, 11, 17, 20, 0))  # the end is exclusive
    assert claim(ctx) is None
    with ctx.unit_of_work() as session, pytest.raises(OutsideCallingHours) as refused:
        callbacks_of(ctx, session).claim(callback_of(ctx, number).id, "op", user_id=None)
    assert "20:00" in refused.value.zh
    clock.set(datetime(2026, 11, 17, 9, 0))
    assert claim(ctx) is not None


def test_a_ticket_replied_at_night_is_queued_for_the_morning(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    clock.set(datetime(2026, 11, 16, 22, 0))
    number = replied(ctx, staff)
    enqueue(ctx)
    assert callback_of(ctx, number).next_attempt_at == datetime(2026, 11, 17, 9, 0)


def test_an_opted_out_number_is_never_called(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    first = replied(ctx, staff)
    enqueue(ctx)
    with ctx.unit_of_work() as session:
        assert callbacks_of(ctx, session).opt_out("13900001111", "市民要求不再回访") == 1
    assert callback_of(ctx, first).state == "opted_out"
    assert claim(ctx) is None
    second = replied(ctx, staff)  # a later ticket of the same number
    enqueue(ctx)
    assert callback_of(ctx, second).state == "opted_out"
    with ctx.unit_of_work() as session, pytest.raises(CallbackError):
        callbacks_of(ctx, session).claim(callback_of(ctx, second).id, "op", user_id=1)


def test_emergency_and_complex_tickets_need_a_person(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    emergency = replied(ctx, staff, "燃气泄漏", "rqgs")
    complex_ = replied(ctx, staff, "多部门职责交叉", "ddzx")
    ordinary = replied(ctx, staff)
    assert enqueue(ctx) == 3
    assert callback_of(ctx, emergency).mode == callback_of(ctx, complex_).mode == "person"
    got = claim(ctx)
    assert got is not None and got.ticket_number == ordinary
    assert claim(ctx) is None  # the machine never takes the person-required ones
    # an operator takes one, calls, and enters the result
    operator_id = staff.users["op1"].id
    with ctx.unit_of_work() as session:
        service = callbacks_of(ctx, session)
        mine = service.claim(callback_of(ctx, emergency).id, "console:op1", user_id=operator_id)
        with pytest.raises(CallbackError):  # a second operator cannot claim it at the same time
            service.claim(callback_of(ctx, emergency).id, "console:op2", user_id=operator_id)
        service.finish(
            mine, AttemptOutcome.ANSWERED, "basically_satisfied", solved=True, actor=staff.operator
        )
    ticket = load(ctx, emergency)
    assert ticket.state == "archived" and ticket.events[-1].actor_name == staff.operator.name
    assert ticket.events[-1].data == {"result": "basically_satisfied", "solved": True}
    assert callback_of(ctx, emergency).channel == "manual"


def test_a_stale_claim_after_a_restart_is_never_dialled_again(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    number = replied(ctx, staff)
    enqueue(ctx)
    got = claim(ctx, "process-that-dies")
    assert got is not None
    # "restart": a new service on a fresh context finds the claim and does not take it again
    fresh = HotlineContext.from_settings(ctx.settings, clock=clock)
    try:
        with fresh.unit_of_work() as session:
            service = callbacks_of(fresh, session)
            assert service.recover_stale() == []  # not stale yet: the first process may still be calling
            assert service.claim_next("new-process") is None
        clock.advance(timedelta(minutes=16))
        with fresh.unit_of_work() as session:
            assert len(callbacks_of(fresh, session).recover_stale()) == 1
        row = callback_of(ctx, number)
        assert (row.state, row.attempts) == ("pending", 1)
        with fresh.unit_of_work() as session:
            attempts = callbacks_of(fresh, session).attempts(row.id)
        assert [(a.number, a.outcome) for a in attempts] == [(1, "interrupted")]
        clock.set(row.next_attempt_at)
        with fresh.unit_of_work() as session:
            again = callbacks_of(fresh, session).claim_next("new-process")
        assert again is not None and again.attempt == 2
    finally:
        fresh.close()
    with pytest.raises(CallbackError):  # the dead process's late report changes nothing
        finish(ctx, got, AttemptOutcome.ANSWERED, "satisfied")
    assert load(ctx, number).state == "replied"


def test_a_supervisor_archiving_the_ticket_cancels_its_callback(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    number = replied(ctx, staff)
    enqueue(ctx)
    act(ctx, number, staff.supervisor, Action.ARCHIVE, schemas.NoteBody(note="市民来电表示满意"))
    enqueue(ctx)
    assert callback_of(ctx, number).state == "cancelled"
    assert claim(ctx) is None


def test_a_result_recorded_on_the_ticket_itself_completes_its_callback(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    """The generic ticket action counts as the survey: the callback is done with that result, so the
    callback rate and satisfaction include it; a dissatisfied one (which reopens) too."""
    happy, unhappy = replied(ctx, staff), replied(ctx, staff)
    enqueue(ctx)
    act(ctx, happy, staff.operator, Action.RECORD_CALLBACK, schemas.CallbackBody(result="satisfied"))
    act(ctx, unhappy, staff.operator, Action.RECORD_CALLBACK, schemas.CallbackBody(result="dissatisfied"))
    enqueue(ctx)
    done = callback_of(ctx, happy), callback_of(ctx, unhappy)
    assert [(c.state, c.result) for c in done] == [("done", "satisfied"), ("done", "dissatisfied")]
    with ctx.sessions() as session:
        (row,) = callback_figures(session, MONDAY_9 - timedelta(days=1), clock.now() + timedelta(days=1))
    assert (row.due, row.called_back, row.surveyed, row.satisfied, row.dissatisfied) == (2, 2, 2, 1, 1)


def test_illegal_result_is_refused_and_nothing_changes(ctx: HotlineContext, staff: Staff) -> None:
    number = replied(ctx, staff)
    act(ctx, number, staff.operator, Action.RECORD_CALLBACK, schemas.CallbackBody(result="satisfied"))
    with pytest.raises(IllegalTransition):
        act(ctx, number, staff.operator, Action.RECORD_CALLBACK, schemas.CallbackBody(result="dissatisfied"))
    assert load(ctx, number).callback_result == "satisfied"


# ---- the web survey link -----------------------------------------------------------------------


def test_web_link_valid_reused_and_expired(ctx: HotlineContext, staff: Staff, clock: ManualClock) -> None:
    number = replied(ctx, staff)
    enqueue(ctx)
    cb = callback_of(ctx, number)
    with ctx.unit_of_work() as session:
        token = create_link(session, clock, cb.id, valid_hours=72)
        late = create_link(session, clock, cb.id, valid_hours=1)
    with ctx.unit_of_work() as session:
        with pytest.raises(LinkRefused):
            open_link(session, clock, "not-a-token")
        assert open_link(session, clock, token).callback.id == cb.id
        callback = spend_link(session, clock, token)
        callbacks_of(ctx, session).record_web(callback, "satisfied", True, None)
    assert load(ctx, number).state == "archived"
    assert callback_of(ctx, number).channel == "web"
    with ctx.unit_of_work() as session, pytest.raises(LinkRefused) as used:
        spend_link(session, clock, token)
    assert "已使用" in used.value.zh
    clock.advance(timedelta(hours=1))
    with ctx.unit_of_work() as session, pytest.raises(LinkRefused) as expired:
        spend_link(session, clock, late)
    assert "过期" in expired.value.zh


def test_unreachable_callback_gets_a_link_by_sms_file_backend(
    ctx: HotlineContext, staff: Staff, clock: ManualClock, tmp_path: Path
) -> None:
    number = replied(ctx, staff)
    enqueue(ctx)
    backend = FileSms(tmp_path / "sms.jsonl")
    with ctx.unit_of_work() as session:
        cb = session.get(Callback, callback_of(ctx, number).id)
        assert cb is not None
        message = send_survey_link(session, clock, backend, cb, "https://12345.example.cn", 72)
        assert message.status == "sent"
    (sent,) = backend.messages()
    assert sent["phone"] == "13900001111" and number in str(sent["text"])
    token = str(sent["text"]).split("/s/")[1].split()[0]
    with ctx.unit_of_work() as session:
        assert open_link(session, clock, token).callback.id == cb.id


class _Gateway(BaseHTTPRequestHandler):
    received: list[dict[str, Any]] = []  # noqa: RUF012
    status = 200

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        _Gateway.received.append(
            {"body": json.loads(self.rfile.read(length)), "auth": self.headers.get("Authorization")}
        )
        self.send_response(_Gateway.status)
        self.end_headers()

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def gateway() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _Gateway)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Gateway.received.clear()
    yield f"http://127.0.0.1:{server.server_port}/sms"
    server.shutdown()
    server.server_close()


def test_http_sms_gateway_accepts_and_refusals_are_kept(
    ctx: HotlineContext, clock: ManualClock, gateway: str
) -> None:
    backend = HttpSms(gateway, token="secret-token", timeout=5)
    with ctx.unit_of_work() as session:
        ok = send_sms(session, backend, clock, "13900001111", "测试短信")
    assert ok.status == "sent"
    assert _Gateway.received[0]["body"]["text"] == "测试短信"
    assert _Gateway.received[0]["auth"] == "Bearer secret-token"
    _Gateway.status = 503
    try:
        with ctx.unit_of_work() as session:
            failed = send_sms(session, backend, clock, "13900001111", "第二条")
    finally:
        _Gateway.status = 200
    assert failed.status == "failed" and "503" in (failed.error or "")
    unreachable = HttpSms("http://127.0.0.1:9/none", timeout=2)
    with ctx.unit_of_work() as session:
        lost = send_sms(session, unreachable, clock, "13900001111", "第三条")
        assert lost.status == "failed"
        assert len(list(session.scalars(select(SmsMessage)))) == 3  # every message kept with its status


# ---- figures -----------------------------------------------------------------------------------


def test_satisfaction_callback_rate_and_reopens_per_department(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    water = [replied(ctx, staff) for _ in range(3)]
    lamp = replied(ctx, staff, "路灯损坏", "cgj")
    enqueue(ctx)
    results = {water[0]: "satisfied", water[1]: "dissatisfied", lamp: "basically_satisfied"}
    while (got := claim(ctx)) is not None:  # failures come back only an hour later
        if got.ticket_number in results:
            finish(ctx, got, AttemptOutcome.ANSWERED, results[got.ticket_number])
        else:
            finish(ctx, got, AttemptOutcome.NO_ANSWER)
    start, end = datetime(2026, 11, 1), datetime(2026, 12, 1)
    with ctx.unit_of_work() as session:
        by_dept = {r.key: r for r in callback_figures(session, start, end, "department")}
        (total,) = callback_figures(session, start, end, "all")
        by_cat = {r.key: r for r in callback_figures(session, start, end, "category")}
        before = callback_figures(session, datetime(2026, 10, 1), start, "all")
    sw, cgj = by_dept["sw"], by_dept["cgj"]
    assert (sw.due, sw.called_back, sw.surveyed, sw.satisfied, sw.dissatisfied, sw.reopens) == (
        3,
        2,
        2,
        1,
        1,
        1,
    )
    assert sw.callback_rate == round(2 / 3, 4) and sw.satisfaction_rate == 0.5
    assert (cgj.due, cgj.surveyed, cgj.satisfied, cgj.reopens) == (1, 1, 1, 0)
    assert (total.due, total.surveyed, total.satisfied, total.reopens) == (4, 3, 2, 1)
    assert total.satisfaction_rate == round(2 / 3, 4)
    assert by_cat["生活求助"].due == 4
    assert before == []


# ---- missed calls ------------------------------------------------------------------------------


def test_missed_calls_oldest_first_and_outcome_on_the_call_record(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    from callcenter.models import CallDirection, CallOutcome
    from callcenter.service import CallRecords

    with ctx.unit_of_work() as session:
        records = CallRecords(session, clock)
        for uid, outcome in (
            ("c1", CallOutcome.CALLBACK_REQUESTED),
            ("c2", CallOutcome.ANSWERED),
            ("c3", CallOutcome.ABANDONED),
        ):
            records.open(uid, f"1390000000{uid[-1]}", "12345", "w1", CallDirection.INBOUND)
            records.close(uid, outcome, "ended", "citizen")
            clock.advance(timedelta(minutes=1))
    with ctx.unit_of_work() as session:
        assert [r.uid for r in missed_calls(session)] == ["c1", "c3"]
        record = record_missed_outcome(
            session, clock, "c1", MissedOutcome.REACHED, staff.users["op1"].id, "已回电"
        )
        assert (record.callback_outcome, record.called_back_by_id) == ("reached", staff.users["op1"].id)
    with ctx.unit_of_work() as session:
        assert [r.uid for r in missed_calls(session)] == ["c3"]
        with pytest.raises(CallbackError):
            record_missed_outcome(session, clock, "c1", MissedOutcome.NOT_REACHED, staff.users["op2"].id)
        with pytest.raises(CallbackError):
            record_missed_outcome(session, clock, "c2", MissedOutcome.REACHED, staff.users["op2"].id)


def test_an_answer_by_web_link_during_a_call_stands_and_an_opt_out_during_a_call_holds(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    web, opting = replied(ctx, staff), replied(ctx, staff, "路灯损坏", "cgj")
    with ctx.unit_of_work() as session:
        session.execute(update(Ticket).where(Ticket.number == opting).values(caller_phone="13900002222"))
    enqueue(ctx)
    first, second = claim(ctx), claim(ctx)
    assert first is not None and second is not None
    by_number = {first.ticket_number: first, second.ticket_number: second}
    with ctx.unit_of_work() as session:  # the citizen answers by the web link while the phone rings
        token = create_link(session, clock, by_number[web].callback_id, 72)
        callbacks_of(ctx, session).record_web(spend_link(session, clock, token), "satisfied", True, None)
        callbacks_of(ctx, session).opt_out("13900002222")
    assert finish(ctx, by_number[web], AttemptOutcome.ANSWERED, "dissatisfied").state == "done"
    assert load(ctx, web).callback_result == "satisfied"  # the first answer stands, no reopen
    assert finish(ctx, by_number[opting], AttemptOutcome.NO_ANSWER).state == "opted_out"


def test_the_third_failed_survey_call_makes_it_unreachable_and_texts_a_link(
    ctx: HotlineContext, staff: Staff, clock: ManualClock, tmp_path: Path
) -> None:
    from dispatch.callbacks.runner import SurveyRunner

    ctx.settings.callbacks.sms.file = tmp_path / "sms.jsonl"
    number = replied(ctx, staff)
    enqueue(ctx)
    runner = SurveyRunner(ctx, None, None)  # records results as after a call; no call centre needed
    for outcome in (AttemptOutcome.NO_ANSWER, AttemptOutcome.BUSY, AttemptOutcome.HUNG_UP):
        clock.set(max(clock.now(), callback_of(ctx, number).next_attempt_at))
        got = claim(ctx)
        assert got is not None
        assert runner._record(got, outcome, None, f"call-{got.attempt}", None)["state"] in (
            "pending",
            "unreachable",
        )
    assert callback_of(ctx, number).state == "unreachable"
    (sms,) = FileSms(tmp_path / "sms.jsonl").messages()
    assert sms["phone"] == "13900001111" and "/s/" in str(sms["text"])
    with ctx.unit_of_work() as session:
        assert session.scalar(select(SmsMessage.status)) == "sent"
