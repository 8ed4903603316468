"""Callback survey calls for real: Kamailio, pjsua2 media workers and the queue controller on loopback,
SIPp phones registered with the citizens' numbers answering (or not) and pressing keys by RFC 4733
(telephone-event PT 120, what pjsua2 offers) and by SIP INFO. The survey runner claims due callbacks
from the database and records what came of each call on the ticket. The clock is a ManualClock."""

from __future__ import annotations

import shutil
import time
import wave
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from callcenter.models import CallEvent, CallRecord
from callcenter.testing.harness import LiveCallCentre, loopback_settings
from callcenter.testing.sipkit import PJSUA_DTMF_PT, SeatPhone, dtmf_pcap, pcap, running
from core.accounts.actor import Actor
from core.accounts.models import Role
from core.clock import ManualClock
from core.departments import Department
from dispatch import schemas
from dispatch.callbacks.models import Callback
from dispatch.callbacks.runner import SurveyRunner
from dispatch.callbacks.service import callbacks_of
from dispatch.catalog import load_category_tree, sync_category_tree
from dispatch.models import Ticket
from dispatch.states import Action
from hotline.config import REPO_ROOT
from hotline.context import HotlineContext
from hotline.demo_data import load_departments
from tests.conftest import MONDAY_9, make_settings, subcategory_id

NEEDED = ("kamailio", "sipp", "espeak-ng", "sox")
missing = [tool for tool in NEEDED if not (shutil.which(tool) or shutil.which(tool, path="/usr/sbin"))]
pytestmark = pytest.mark.skipif(bool(missing), reason=f"needs {', '.join(missing)} (make test installs them)")

WORKERS = 4
# The citizens' phones register their numbers with Kamailio (as extensions), so that four of them with
# different behaviour can take survey calls at once; numbers that are not registered go to the trunk.
PHONES = [f"8{group}0{n}" for group in (1, 2, 3, 4) for n in range(1, 5)]
OPERATOR = Actor(None, "话务员", Role.OPERATOR)


@pytest.fixture(scope="module")
def centre(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCallCentre]:
    folder = tmp_path_factory.mktemp("survey")
    database = folder / "hotline.db"
    shutil.copyfile(sqlite_template, database)
    cc = loopback_settings(
        WORKERS, ["1001", *PHONES],
        recordings_dir=folder / "recordings", prompts_dir=folder / "prompts", runtime_dir=folder / "run",
    )  # fmt: skip
    settings = make_settings(
        f"sqlite:///{database}",
        callcenter=cc.model_dump(by_alias=True),
        callbacks={
            "digit_wait_seconds": 2,
            "ring_seconds": 4,
            "concurrent_calls": WORKERS,
            "sms": {"file": str(folder / "sms.jsonl")},
        },
    )
    ctx = HotlineContext.from_settings(settings, clock=ManualClock(MONDAY_9))
    with ctx.unit_of_work() as session:
        load_departments(session)
        sync_category_tree(session, load_category_tree(REPO_ROOT / "dispatch" / "category_tree.toml"))
    with LiveCallCentre(ctx, settings.callcenter) as live:
        yield live
    ctx.close()


@pytest.fixture
def live(centre: LiveCallCentre) -> Iterator[LiveCallCentre]:
    assert isinstance(centre.ctx.clock, ManualClock)
    centre.ctx.clock.set(MONDAY_9)
    yield centre
    centre.wait_for(lambda: not centre.controller.calls, 30, "every call to end")


def kamailio(live: LiveCallCentre) -> str:
    return f"127.0.0.1:{live.cc.sip_port}"


def replied_ticket(ctx: HotlineContext, phone: str, reply: str = "已抢修恢复供水") -> str:
    with ctx.unit_of_work() as session:
        tickets = ctx.tickets(session)
        water = session.scalar(select(Department.id).where(Department.code == "sw"))
        number = tickets.register(OPERATOR, schemas.TicketCreate(content="停水", caller_phone=phone)).number
        body = schemas.DispatchBody(department="sw", subcategory_id=subcategory_id(session, "停水"))
        tickets.act(number, OPERATOR, Action.DISPATCH, body)
        liaison = Actor(None, "水务联络员", Role.LIAISON, water)
        tickets.act(number, liaison, Action.SIGN, schemas.NoteBody())
        tickets.act(number, liaison, Action.REPLY, schemas.ReplyBody(result=reply))
    return number


def phone(live: LiveCallCentre, number: str, behaviour: str = "uas_answer", **kwargs: Any) -> SeatPhone:
    """A citizen's phone: registers `number` with Kamailio, answers the survey call (or not)."""
    return SeatPhone(number, kamailio(live), behaviour=behaviour, timeout=120, **kwargs)


def run_surveys(
    live: LiveCallCentre, runner: SurveyRunner, expected: int, timeout: float = 120
) -> list[dict[str, Any]]:
    """One scheduler tick on the controller's loop; wait until its calls have all been recorded."""
    before = len(runner.finished)
    placed = live.run(runner.run_once())
    assert placed == expected, f"placed {placed} calls, expected {expected}"
    live.run(runner.wait_idle(), timeout=timeout)
    return runner.finished[before:]


def ticket(live: LiveCallCentre, number: str) -> Ticket:
    with live.ctx.sessions() as session:
        row = session.scalar(select(Ticket).where(Ticket.number == number))
        assert row is not None
        _ = list(row.events)
        session.expunge_all()
        return row


def callback(live: LiveCallCentre, number: str) -> Callback:
    with live.ctx.sessions() as session:
        row = session.scalar(select(Callback).join(Ticket).where(Ticket.number == number))
        assert row is not None
        session.expunge_all()
        return row


def survey_record(live: LiveCallCentre, number: str) -> tuple[CallRecord, list[str]]:
    with live.ctx.sessions() as session:
        record = session.scalar(
            select(CallRecord).join(Ticket, Ticket.id == CallRecord.ticket_id).where(Ticket.number == number)
            .order_by(CallRecord.id.desc())
        )  # fmt: skip
        assert record is not None
        kinds = list(session.scalars(select(CallEvent.kind).where(CallEvent.call_id == record.id)))
        session.expunge_all()
        return record, kinds


def call_events(live: LiveCallCentre, uid: str) -> list[str]:
    with live.ctx.sessions() as session:
        record = session.scalar(select(CallRecord).where(CallRecord.uid == uid))
        if record is None:
            return []
        return list(session.scalars(select(CallEvent.kind).where(CallEvent.call_id == record.id)))


def assert_recorded(record: CallRecord) -> None:
    assert record.direction == "outbound" and record.recording_path
    with wave.open(record.recording_path, "rb") as wav:
        assert (wav.getnchannels(), wav.getframerate()) == (2, 8000)
        assert wav.getnframes() / 8000 > 2.0  # the prompts played into the recording
    assert record.recording_bytes == Path(record.recording_path).stat().st_size


def runner_for(live: LiveCallCentre) -> SurveyRunner:
    return SurveyRunner(live.ctx, live.controller, live.centre.prompts_dir)


def test_keys_by_rfc4733_and_sip_info_are_recorded_and_3_reopens(live: LiveCallCentre) -> None:
    ctx = live.ctx
    numbers = {n: replied_ticket(ctx, n) for n in ("8101", "8102", "8103", "8104")}
    phones = [
        # 1 (satisfied), then 1 again when asked whether it was solved
        phone(
            live,
            "8101",
            pcaps={"audio": pcap("sil:1.5", "dtmf:1", "sil:3", "dtmf:1", "sil:0.2", dtmf_pt=PJSUA_DTMF_PT)},
        ),
        phone(live, "8102", "uas_info", keys={"info_digit": "2", "info_delay_ms": "1500"}),
        phone(live, "8103", pcaps={"audio": dtmf_pcap("3", pt=PJSUA_DTMF_PT, lead_in=1.5)}),
        # a wrong key first: the question is asked once more, then 2 is pressed
        phone(
            live,
            "8104",
            pcaps={"audio": pcap("sil:1.5", "dtmf:9", "sil:3", "dtmf:2", "sil:0.2", dtmf_pt=PJSUA_DTMF_PT)},
        ),
    ]
    runner = runner_for(live)
    with running(*phones):
        reports = run_surveys(live, runner, expected=4)
    assert sorted(r["outcome"] for r in reports) == ["answered"] * 4
    satisfied = ticket(live, numbers["8101"])
    assert (satisfied.state, satisfied.callback_result) == ("archived", "satisfied")
    assert satisfied.events[-1].action == "record_callback"
    event = satisfied.events[-1]
    assert (event.note, event.actor_name) == ("电话自动回访，按键 11", "自动回访")
    assert event.data == {"result": "satisfied", "solved": True}
    assert ticket(live, numbers["8102"]).events[-1].data == {"result": "basically_satisfied", "solved": None}
    by_info = ticket(live, numbers["8102"])
    assert (by_info.state, by_info.callback_result) == ("archived", "basically_satisfied")
    reopened = ticket(live, numbers["8103"])
    assert (reopened.state, reopened.reopen_count, reopened.callback_result) == (
        "in_progress",
        1,
        "dissatisfied",
    )
    assert [e.action for e in reopened.events[-2:]] == ["record_callback", "reopen"]
    second_try = ticket(live, numbers["8104"])
    assert second_try.callback_result == "basically_satisfied"
    for number in numbers.values():
        record, kinds = survey_record(live, number)
        assert_recorded(record)
        assert "menu_result" in kinds and callback(live, number).state == "done"
    record, kinds = survey_record(live, numbers["8104"])
    assert record.dtmf == "92" and "menu_repeat" in kinds
    record, _ = survey_record(live, numbers["8102"])
    assert record.dtmf == "2"


def test_1_and_3_by_sip_info_and_2_by_rfc4733(live: LiveCallCentre) -> None:
    """The other half of the key matrix: every answer arrives by both methods."""
    numbers = {n: replied_ticket(live.ctx, n) for n in ("8401", "8402", "8403")}
    phones = [
        phone(live, "8401", "uas_info", keys={"info_digit": "1", "info_delay_ms": "1500"}),
        # 2 (basically satisfied), then 2: not solved
        phone(
            live,
            "8402",
            pcaps={"audio": pcap("sil:1.5", "dtmf:2", "sil:3", "dtmf:2", "sil:0.2", dtmf_pt=PJSUA_DTMF_PT)},
        ),
        phone(live, "8403", "uas_info", keys={"info_digit": "3", "info_delay_ms": "1500"}),
    ]
    with running(*phones):
        run_surveys(live, runner_for(live), expected=3)
    results = {n: ticket(live, number).callback_result for n, number in numbers.items()}
    assert results == {"8401": "satisfied", "8402": "basically_satisfied", "8403": "dissatisfied"}
    assert ticket(live, numbers["8403"]).state == "in_progress"  # reopened
    assert ticket(live, numbers["8402"]).events[-1].data == {"result": "basically_satisfied", "solved": False}
    for number in numbers.values():
        record, _ = survey_record(live, number)
        assert_recorded(record)


def test_no_key_wrong_key_no_answer_and_busy_are_retried_at_their_times(live: LiveCallCentre) -> None:
    ctx = live.ctx
    assert isinstance(ctx.clock, ManualClock)
    numbers = {n: replied_ticket(ctx, n) for n in ("8201", "8202", "8203", "8204")}
    phones = [
        phone(live, "8201"),  # answers, presses nothing
        phone(live, "8202", "uas_info", keys={"info_digit": "7", "info_delay_ms": "1500"}),
        phone(live, "8203", "uas_ringing"),  # does not answer
        phone(live, "8204", "uas_busy"),
    ]
    runner = runner_for(live)
    with running(*phones):
        reports = run_surveys(live, runner, expected=4)
    for gone in phones:  # these phones are switched off: their registrations go
        assert gone.register(expires=0).ok
    outcomes = {r["callback_id"]: r["outcome"] for r in reports}
    expected = {
        "8201": "no_input",
        "8202": "invalid_input",
        "8203": "no_answer",
        "8204": "busy",
    }
    for phone_number, outcome in expected.items():
        row = callback(live, numbers[phone_number])
        assert outcomes[row.id] == outcome, phone_number
        assert (row.state, row.attempts) == ("pending", 1)
        assert row.next_attempt_at == MONDAY_9 + timedelta(minutes=60)
        assert ticket(live, numbers[phone_number]).state == "replied"
    record, kinds = survey_record(live, numbers["8201"])
    assert kinds.count("menu_repeat") == 1 and record.outcome == "completed"
    assert_recorded(record)
    record, _ = survey_record(live, numbers["8203"])
    assert record.outcome == "not_reached"

    # not due yet: nothing is placed; due but after the calling hours: nothing either
    assert live.run(runner.run_once()) == 0
    ctx.clock.set(datetime(2026, 11, 16, 20, 30))
    assert live.run(runner.run_once()) == 0
    # the next morning, with one number opted out: three calls, the opted-out one never
    ctx.clock.set(datetime(2026, 11, 17, 9, 0))
    with ctx.unit_of_work() as session:
        callbacks_of(ctx, session).opt_out("8204", "不需要回访")
    with running(phone(live, "8201", pcaps={"audio": dtmf_pcap("1", pt=PJSUA_DTMF_PT, lead_in=1.5)}),
                 phone(live, "8202", "uas_info", keys={"info_digit": "1", "info_delay_ms": "1500"}),
                 phone(live, "8203", "uas_busy")):  # fmt: skip
        reports = run_surveys(live, runner, expected=3)
    assert sorted(r["outcome"] for r in reports) == ["answered", "answered", "busy"]
    assert callback(live, numbers["8201"]).attempts == 2
    assert ticket(live, numbers["8201"]).state == "archived"
    assert callback(live, numbers["8204"]).state == "opted_out"
    busy_again = callback(live, numbers["8203"])
    assert (busy_again.attempts, busy_again.next_attempt_at) == (2, datetime(2026, 11, 17, 13, 0))


def test_an_operator_places_a_callback_from_the_console_and_talks_to_the_citizen(
    live: LiveCallCentre,
) -> None:
    """POST /api/callbacks/{id}/dial: the attempt is claimed, the citizen rung through Kamailio, then the
    operator's seat phone; both talk on the bridge and the call is recorded. The result is entered after."""
    import base64

    from fastapi.testclient import TestClient

    from agent_ui.app import create_app
    from callcenter.models import SeatState
    from callcenter.service import SeatService
    from core.accounts.service import create_user

    ctx = live.ctx
    number = replied_ticket(ctx, "8301", reply="已上门维修")
    with ctx.unit_of_work() as session:
        callbacks_of(ctx, session).enqueue_replied()
        user = create_user(session, "cb_op", "callback-pass-1", Role.OPERATOR, "回访话务员", ctx.clock.now())
        SeatService(session, ctx.clock).change("1001", SeatState.BREAK, operator_id=user.id)
    cb = callback(live, number)
    auth = {"Authorization": "Basic " + base64.b64encode(b"cb_op:callback-pass-1").decode()}
    app = create_app(ctx)
    app.state.callcentre = live.centre
    citizen = phone(live, "8301", pcaps={"audio": pcap("tone:700:6")})
    seat = phone(live, "1001", pcaps={"audio": pcap("tone:500:6")})
    before = len(live.records())
    client = TestClient(app)  # no lifespan: the call centre belongs to this module, not to the app
    with running(citizen, seat):
        placed = client.post(f"/api/callbacks/{cb.id}/dial", headers=auth)
        assert placed.status_code == 200, placed.text
        assert placed.json()["attempt"] == 1 and placed.json()["call_uid"]
        uid = placed.json()["call_uid"]
        live.wait_for(lambda: "seat_answered" in call_events(live, uid), 30, "the seat to answer")
        # The seat is on this call: the queue must not offer it an inbound caller meanwhile.
        assert live.call(live.controller.seats_on_callback) == {"1001"}
        time.sleep(3)  # they talk
        live.call(live.controller.hangup, uid, "operator")
        live.wait_for(
            lambda: any(r.uid == uid and r.ended_at for r in live.records()[before:]), 20, "the call to end"
        )
        assert live.call(live.controller.seats_on_callback) == set()
        done = client.post(
            f"/api/callbacks/{cb.id}/result", json={"result": "satisfied", "solved": True}, headers=auth
        )
        assert done.status_code == 200, done.text
    record = next(r for r in live.records() if r.uid == uid)
    with live.ctx.sessions() as session:
        kinds = list(session.scalars(select(CallEvent.kind).where(CallEvent.call_id == record.id)))
    assert "seat_answered" in kinds and record.outcome == "completed"
    assert_recorded(record)
    assert ticket(live, number).state == "archived"
    assert callback(live, number).channel == "manual"
