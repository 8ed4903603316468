"""Duplicate requests at intake on both databases: planted duplicates are suggested and unrelated
tickets are not (the team's tuning groups), a held-out set written by other hands judges the same on
text never tuned on, a further call is linked (附加来电) and counted, the third call of one number is
flagged, everyone linked is called back, and bad input gets a clear answer."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from core import semantics
from core.accounts.actor import Actor
from core.accounts.models import Role
from core.clock import ManualClock
from core.departments import Department
from core.errors import HotlineError
from dispatch import schemas
from dispatch.callbacks.models import Callback, CallbackState
from dispatch.duplicates import Duplicate, DuplicateFinder
from dispatch.errors import IllegalTransition
from dispatch.models import TicketCaller
from dispatch.states import Action, TicketState
from hotline.config import REPO_ROOT
from hotline.context import HotlineContext
from tests.conftest import PASSWORD, Staff
from tests.dispatch.test_callbacks import claim, enqueue, finish
from tests.helpers import act, dispatched, load

TUNING = REPO_ROOT / "dispatch" / "tuning" / "duplicates.jsonl"
HELDOUT_DIR = Path(__file__).parent / "data"


def groups(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def register(ctx: HotlineContext, staff: Staff, content: str, phone: str = "13900001111") -> str:
    with ctx.unit_of_work() as session:
        body = schemas.TicketCreate(content=content, caller_phone=phone)
        return ctx.tickets(session).register(staff.operator, body).number


def find(ctx: HotlineContext, text: str, phone: str | None = None, **settings: Any) -> list[Duplicate]:
    with ctx.unit_of_work() as session:
        wanted = ctx.settings.dispatch.duplicates.model_copy(update=settings)
        encoder = None if settings.get("model_off") else semantics.encoder()
        return DuplicateFinder(session, ctx.gazetteer, wanted, ctx.clock, encoder).find(text, None, phone)


def add_caller(
    ctx: HotlineContext, staff: Staff, number: str, phone: str | None, text: str = "又来电"
) -> None:
    body = schemas.AddCallerBody(content=text, caller_phone=phone)
    act(ctx, number, staff.operator, Action.ADD_CALLER, body)


def judge(ctx: HotlineContext, staff: Staff, path: Path) -> dict[str, float]:
    """Every group's ticket registered; each 'same' call should find it first, no 'different' one at all."""
    numbers = {g["group"]: register(ctx, staff, g["ticket"]) for g in groups(path)}
    hits = same = wrong = different = 0
    for g in groups(path):
        for text in g["same"]:
            found = find(ctx, text, phone="13600000000")
            same += 1
            hits += bool(found) and found[0].number == numbers[g["group"]]
        for text in g["different"]:
            found = find(ctx, text, phone="13600000000")
            different += 1
            wrong += any(d.number == numbers[g["group"]] for d in found)
    return {"recall": hits / same, "false_links": wrong / different}


def test_planted_duplicates_are_suggested_and_unrelated_tickets_are_not(
    ctx: HotlineContext, staff: Staff
) -> None:
    figures = judge(ctx, staff, TUNING)  # the groups the thresholds were set on: a regression floor
    assert figures["recall"] >= 0.9, figures
    assert figures["false_links"] <= 0.09, figures


# Two held-out sets, each of 40 groups by a writer who saw neither the code nor the tuning groups nor
# the other set. What each measured when the finder first met it (closing notes of issue 18), with
# floors just under to catch a loss; never tuned on.
HELDOUT_FLOORS = {
    "duplicates_heldout.jsonl": {"recall": 0.9, "false_links": 0.25},  # met: 0.917 / 0.233
    "duplicates_heldout2.jsonl": {"recall": 0.8, "false_links": 0.36},  # met: 0.825 / 0.342
}


@pytest.mark.parametrize("name", sorted(HELDOUT_FLOORS))
def test_on_calls_never_tuned_on(
    ctx: HotlineContext, staff: Staff, request: pytest.FixtureRequest, name: str
) -> None:
    if "postgresql" in request.node.name:
        pytest.skip("the held-out figures do not depend on the database: measured once, on SQLite")
    path = HELDOUT_DIR / name
    if not path.exists():
        pytest.skip(f"the held-out set {name} is not in this checkout")
    figures = judge(ctx, staff, path)
    print(json.dumps({name: figures}))
    floor = HELDOUT_FLOORS[name]
    assert figures["recall"] >= floor["recall"], figures
    assert figures["false_links"] <= floor["false_links"], figures


def test_only_open_tickets_of_the_last_days_are_compared(
    ctx: HotlineContext, staff: Staff, clock: ManualClock
) -> None:
    text = "幸福路幸福家园小区门口自来水管爆了，水一直往外冒"
    old = register(ctx, staff, text)
    clock.advance(timedelta(days=ctx.settings.dispatch.duplicates.days + 1))
    assert find(ctx, "幸福家园门口自来水管爆了，水一直在往外冒") == []  # too old
    new = register(ctx, staff, text)
    assert [d.number for d in find(ctx, "幸福家园门口自来水管爆了，水一直在往外冒")] == [new]
    assert old != new


def test_without_the_model_nearly_the_same_words_still_find_it(ctx: HotlineContext, staff: Staff) -> None:
    number = register(ctx, staff, "育才路小学门口接孩子的车乱停，把路都堵死了")
    found = find(ctx, "育才路小学门口接孩子的车乱停，路堵死了", model_off=True)
    assert [d.number for d in found] == [number]
    assert find(ctx, "育才路有个窨井盖不见了很危险", model_off=True) == []


def test_a_further_call_is_linked_counted_and_the_third_of_one_number_flagged(
    ctx: HotlineContext, staff: Staff
) -> None:
    number = register(ctx, staff, "东风小区三号楼电梯坏了三天没人修，老人下不了楼", phone="13900001111")
    add_caller(ctx, staff, number, "13700002222", "东风小区3号楼的电梯停了好几天了")
    found = find(ctx, "东风小区三号楼电梯还是坏的，老人出不了门", phone="13900001111")
    assert found[0].number == number and found[0].callers == 2
    assert (found[0].calls_by_this_number, found[0].repeat) == (2, False)
    add_caller(ctx, staff, number, "13900001111", "我又打来了，电梯还没修")
    found = find(ctx, "东风小区三号楼电梯到现在都没修好", phone="13900001111")
    assert (found[0].callers, found[0].calls_by_this_number, found[0].repeat) == (3, 3, True)
    add_caller(ctx, staff, number, "13900001111", "第三次打了，东风小区电梯")
    ticket = load(ctx, number)
    assert [c.call_count for c in ticket.extra_callers] == [1, 2, 3]
    event = ticket.events[-1]
    assert (event.action, event.to_state, event.data) == (
        "add_caller",
        TicketState.REGISTERED.value,
        {"calls": 3, "repeat": True, "callers": 4},
    )
    with ctx.unit_of_work() as session:
        out = ctx.tickets(session).get(number, staff.operator)
        from dispatch.service import ticket_out

        shown = ticket_out(out, ctx.clock.now(), mask=True)
    assert shown.repeat_calls == 3 and shown.extra_callers[0].phone == "137****2222"


def test_a_closed_ticket_takes_no_further_caller_and_a_liaison_links_none(
    ctx: HotlineContext, staff: Staff
) -> None:
    number = register(ctx, staff, "社保卡怎么补办")
    act(
        ctx,
        number,
        staff.operator,
        Action.ANSWER_ON_SPOT,
        schemas.AnswerOnSpotBody(answer="带身份证到社保大厅"),
    )
    with pytest.raises(IllegalTransition) as refused:
        add_caller(ctx, staff, number, "13700002222")
    assert "附加来电" in refused.value.zh
    other = register(ctx, staff, "河西路停水")
    with pytest.raises(HotlineError) as not_allowed:
        act(ctx, other, staff.water, Action.ADD_CALLER, schemas.AddCallerBody(content="又来电"))
    assert any("\u4e00" <= ch <= "\u9fff" for ch in not_allowed.value.zh)
    assert load(ctx, other).extra_callers == []


def test_everyone_linked_is_called_back_and_only_the_first_caller_settles_the_ticket(
    ctx: HotlineContext, staff: Staff
) -> None:
    number = dispatched(ctx, staff, "停水", "sw")
    add_caller(ctx, staff, number, "13700002222")
    add_caller(ctx, staff, number, None)  # no number given: nobody to call
    with ctx.unit_of_work() as session:
        dept_id = session.scalar(select(Department.id).where(Department.code == "sw"))
    liaison = Actor(None, "sw联络员", Role.LIAISON, dept_id)
    act(ctx, number, liaison, Action.SIGN, schemas.NoteBody())
    act(ctx, number, liaison, Action.REPLY, schemas.ReplyBody(result="已抢修恢复供水"))
    assert enqueue(ctx) == 2
    assert enqueue(ctx) == 0
    first = claim(ctx, "a")
    second = claim(ctx, "b")
    assert first is not None and second is not None
    assert {first.phone, second.phone} == {"13900001111", "13700002222"}
    own, extra = (first, second) if first.phone == "13900001111" else (second, first)
    finish(ctx, own, _answered(), "satisfied")
    assert load(ctx, number).state == TicketState.ARCHIVED.value
    enqueue(ctx)  # settles what the archive settled: the further caller is still to be asked
    finish(ctx, extra, _answered(), "dissatisfied")
    ticket = load(ctx, number)
    assert (ticket.state, ticket.callback_result) == (TicketState.ARCHIVED.value, "satisfied")
    with ctx.unit_of_work() as session:
        rows = session.scalars(select(Callback).where(Callback.ticket_id == ticket.id)).all()
        extra_id = session.scalar(select(TicketCaller.id).where(TicketCaller.phone == "13700002222"))
        assert {(c.extra_caller_id, c.state, c.result) for c in rows} == {
            (0, CallbackState.DONE.value, "satisfied"),
            (extra_id, CallbackState.DONE.value, "dissatisfied"),
        }


def _answered() -> Any:
    from dispatch.callbacks.models import AttemptOutcome

    return AttemptOutcome.ANSWERED


def test_the_api_says_it_in_chinese_and_refuses_bad_input(ctx: HotlineContext, staff: Staff) -> None:
    from fastapi.testclient import TestClient

    from agent_ui.app import create_app

    number = register(ctx, staff, "人民路步行街晚上有酒吧放音乐到凌晨两点，吵得睡不着")
    with TestClient(create_app(ctx)) as client:
        client.auth = ("op1", PASSWORD)
        found = client.get("/api/duplicates", params={"text": "步行街那家酒吧天天半夜还在唱歌，太吵了"})
        assert found.status_code == 200, found.text
        assert found.json()[0]["summary"] == f"可能与 {number} 为同一诉求，已有 1 位来电人"
        bad = client.get("/api/duplicates", params={"text": "人民路酒吧", "phone": "abc"})
        assert bad.status_code == 422 and any("\u4e00" <= ch <= "\u9fff" for ch in bad.text)
        empty = client.get("/api/duplicates", params={"text": ""})
        assert empty.status_code == 422
        linked = client.post(
            f"/api/tickets/{number}/add_caller", json={"content": "又来电", "caller_phone": "1"}
        )
        assert linked.status_code == 422
        linked = client.post(
            f"/api/tickets/{number}/add_caller", json={"content": "酒吧太吵", "caller_phone": "13700002222"}
        )
        assert linked.status_code == 200 and linked.json()["extra_callers"][0]["content"] == "酒吧太吵"
        client.auth = ("sw1", PASSWORD)
        assert client.get("/api/duplicates", params={"text": "人民路酒吧"}).status_code == 403
