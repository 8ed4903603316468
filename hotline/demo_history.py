"""Past weeks of the demo county (`hotline demo-data --history-days N`), so that the 三率 league, the
trends, hotspots and the monthly report have something to show after `make run`.

Made up and seeded (the same every time): citizens' requests written for the product, placed in the
gazetteer's communities, dispatched to the departments of the category tree; each unit signs, replies
and satisfies citizens with its own made-up habits, so the league has a top and a bottom. Every step
goes through the ticket service with the clock set in the past, so the events are real transitions.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, time, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts.actor import Actor
from core.accounts.models import Role
from core.clock import ManualClock
from core.departments import Department
from dispatch import schemas
from dispatch.gazetteer import Gazetteer
from dispatch.models import SubCategory, Ticket
from dispatch.service import TicketService
from dispatch.states import Action
from hotline.context import HotlineContext

SEED = 12345
# (sub-category, what callers say; {place} is a road or estate of a community, {n} a number)
REQUESTS: list[tuple[str, list[str]]] = [
    (
        "停水",
        ["{place}{n}号楼从早上开始停水了，什么时候能来水？", "{place}这一片水压特别低，六楼以上根本没水。"],
    ),
    ("停电", ["{place}突然停电了，冰箱里的东西都要坏了。", "{place}{n}栋一到晚上就跳闸停电，已经好几天了。"]),
    ("燃气故障", ["{place}{n}栋的燃气表不走字，做不了饭。"]),
    ("路灯损坏", ["{place}路边的路灯坏了好几盏，晚上走路看不见。", "{place}那段路的路灯白天亮晚上不亮。"]),
    ("道路破损", ["{place}路面有个大坑，骑电动车经过很危险。", "{place}的人行道砖翘起来了，老人容易绊倒。"]),
    ("垃圾清运", ["{place}的垃圾桶满了好几天没人清运，味道很大。", "{place}路口堆了一堆建筑垃圾没人管。"]),
    ("邻里纠纷", ["{place}{n}楼的邻居在楼道里堆杂物，沟通了也不听。"]),
    (
        "噪音扰民",
        ["{place}附近的工地晚上十点以后还在施工，吵得睡不着。", "{place}楼下的烧烤店音响开到半夜。"],
    ),
    ("环境污染", ["{place}那边的厂子排黑烟，气味很刺鼻。", "{place}旁边的小河发黑发臭。"]),
    ("拖欠工资", ["我在{place}的工地干活，老板拖欠工资{n}个月了。"]),
    ("占道经营", ["{place}路口的小摊贩占道经营，车都过不去。"]),
    ("食品安全", ["在{place}一家餐馆吃完饭拉肚子，怀疑食材不新鲜。"]),
    ("物业服务", ["{place}小区的电梯坏了半个月，物业一直不修。"]),
    ("公交出租", ["{place}站的{n}路公交车经常不按时发车。"]),
    ("社会保障政策", ["住在{place}，想问灵活就业人员怎么交社保？"]),
    ("教育入学政策", ["孩子明年上小学，我们住{place}，划片到哪个学校？"]),
    ("交通秩序", ["{place}路口早晚高峰车辆乱停乱放，堵得厉害。"]),
]
RESULTS = [("satisfied", 70), ("basically_satisfied", 18), ("dissatisfied", 12)]


@dataclass
class Habits:
    """How a unit works in the demo: chance of a late sign, of a late reply, of a citizen's yes."""

    late_sign: float
    late_reply: float
    solved: float


def _habits(rng: random.Random, codes: list[str]) -> dict[str, Habits]:
    return {
        code: Habits(rng.uniform(0.02, 0.3), rng.uniform(0.02, 0.35), rng.uniform(0.6, 0.97))
        for code in codes
    }


def _words(places: Gazetteer) -> list[tuple[str, str | None]]:
    """(a place word, the town office's department) for every community."""
    words = []
    for town in places.towns:
        for community in town.communities:
            for word in community.words or [community.name]:
                words.append((word, town.department))
    return words


def load_history(ctx: HotlineContext, session: Session, days: int, now: datetime, per_day: int = 12) -> int:
    """`days` of past tickets before `now`, into a hotline that has none older than two days."""
    if days <= 0:
        return 0
    older = session.scalar(
        select(func.count()).select_from(Ticket).where(Ticket.created_at < now - timedelta(days=2))
    )
    if older:
        return 0
    rng = random.Random(SEED)
    subs = {s.name: s for s in session.scalars(select(SubCategory))}
    departments = {d.code: d for d in session.scalars(select(Department))}
    habits = _habits(rng, sorted(departments))
    words = _words(ctx.gazetteer)
    clock = ManualClock(now)
    service = TicketService(
        session,
        ctx.rules,
        clock,
        ctx.settings.dispatch.ticket_number_digits,
        ctx.settings.dispatch.review_replies,
        ctx.gazetteer,
    )
    service.suggestions = False
    operator = Actor(None, "话务员（演示）", Role.OPERATOR)
    made = 0
    for day in range(days, 0, -1):
        date = (now - timedelta(days=day)).date()
        for _ in range(rng.randint(per_day // 2, per_day * 3 // 2)):
            sub_name, texts = rng.choice(REQUESTS)
            place, town_department = rng.choice(words)
            code = (
                town_department
                if sub_name == "邻里纠纷"
                else (subs[sub_name].default_department.code if subs[sub_name].default_department else None)
            )
            if code not in departments:
                continue
            at = datetime.combine(date, time(8)) + timedelta(minutes=rng.randint(0, 12 * 60))
            text = rng.choice(texts).format(place=place, n=rng.randint(1, 30))
            _life(
                service,
                clock,
                rng,
                at,
                now,
                text,
                place,
                subs[sub_name],
                departments[code],
                habits[code],
                operator,
            )
            made += 1
    return made


def _life(
    service: TicketService,
    clock: ManualClock,
    rng: random.Random,
    at: datetime,
    now: datetime,
    text: str,
    place: str,
    sub: SubCategory,
    department: Department,
    habits: Habits,
    operator: Actor,
) -> None:
    """One ticket from the call to the callback, as far as `now` allows."""
    liaison = Actor(None, f"{department.name}联络员（演示）", Role.LIAISON, department.id)
    phone = f"139{rng.randint(0, 99_999_999):08d}"
    clock.set(at)
    number = service.register(
        operator, schemas.TicketCreate(content=text, caller_phone=phone, address=place)
    ).number

    def step(delay: timedelta, actor: Actor, action: Action, body: object) -> bool:
        clock.set(clock.now() + delay)
        if clock.now() >= now:
            return False
        service.act(number, actor, action, body)  # type: ignore[arg-type]
        return True

    dispatch = schemas.DispatchBody(department=department.code, subcategory_id=sub.id)
    if not step(timedelta(minutes=rng.randint(3, 20)), operator, Action.DISPATCH, dispatch):
        return
    sign_after = (
        timedelta(hours=rng.randint(20, 30))
        if rng.random() < habits.late_sign
        else timedelta(minutes=rng.randint(5, 90))
    )
    if not step(sign_after, liaison, Action.SIGN, schemas.NoteBody(note="已签收")):
        return
    ticket = service.session.get(
        Ticket, service.session.scalar(select(Ticket.id).where(Ticket.number == number))
    )
    assert ticket is not None and ticket.deadline is not None
    late = rng.random() < habits.late_reply
    reply_at = (
        ticket.deadline + timedelta(hours=rng.randint(2, 48))
        if late
        else clock.now() + (ticket.deadline - clock.now()) * rng.uniform(0.2, 0.9)
    )
    if not step(
        max(reply_at - clock.now(), timedelta(minutes=10)),
        liaison,
        Action.REPLY,
        schemas.ReplyBody(result="已安排人员到现场处理，问题已解决。"),
    ):
        return
    if service.review_replies and not step(
        timedelta(minutes=rng.randint(10, 120)), operator, Action.APPROVE_REPLY, schemas.NoteBody(note="同意")
    ):
        return
    result = rng.choices([r for r, _ in RESULTS], [w for _, w in RESULTS])[0]
    solved = result != "dissatisfied" and rng.random() < habits.solved
    callback = schemas.CallbackBody(result=result, solved=solved)  # type: ignore[arg-type]
    step(timedelta(hours=rng.randint(2, 30)), Actor.system("自动回访"), Action.RECORD_CALLBACK, callback)
