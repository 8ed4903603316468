"""Demo data for `make run`: a made-up county's departments, staff and a day of tickets.

Everything here is fictional and written for the product (the county is 演示县). The tickets are
made through the ticket service with a clock set in the past, so their events are real transitions.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from core.accounts.actor import actor_of
from core.accounts.models import Role, User
from core.accounts.service import create_user
from core.clock import ManualClock
from core.departments import Department
from dispatch import schemas
from dispatch.catalog import load_category_tree, sync_category_tree, upsert_department
from dispatch.models import SubCategory, Ticket
from dispatch.service import TicketService
from dispatch.states import Action
from hotline.context import HotlineContext
from knowledge_base.models import KbEntry
from knowledge_base.service import import_jsonl

DEMO_KB = Path(__file__).resolve().parent.parent / "knowledge_base" / "demo_kb.jsonl"

DEMO_PASSWORD = "hotline-demo"

# Department codes are the county's standard codes (shared with the routing configuration).
DEPARTMENTS: list[tuple[str, str, str]] = [
    ("ddzx", "演示县处置督办中心", "supervision"),
    ("rsj", "演示县人力资源和社会保障局", "department"),
    ("ybj", "演示县医疗保障局", "department"),
    ("gjj", "演示县住房公积金管理中心", "department"),
    ("gaj", "演示县公安局（非警务类）", "department"),
    ("zjj", "演示县住房和城乡建设局", "department"),
    ("cgj", "演示县城市管理综合执法局", "department"),
    ("sthjj", "演示县生态环境分局", "department"),
    ("scjgj", "演示县市场监督管理局", "department"),
    ("jyj", "演示县教育局", "department"),
    ("jtj", "演示县交通运输局", "department"),
    ("mzj", "演示县民政局", "department"),
    ("wjj", "演示县卫生健康局", "department"),
    ("zrzyj", "演示县自然资源局", "department"),
    ("swj", "演示县税务局", "department"),
    ("zwzx", "演示县政务服务中心", "department"),
    ("nyj", "演示县农业农村局", "department"),
    ("slj", "演示县水利局", "department"),
    ("sw", "演示县供水有限公司", "enterprise"),
    ("gdj", "演示县供电公司", "enterprise"),
    ("rqgs", "演示县燃气有限公司", "enterprise"),
    ("ytjd", "城关街道办事处", "township"),
    ("hxz", "河西镇人民政府", "township"),
    ("bhjd", "滨河街道办事处", "township"),
    ("dsz", "东山镇人民政府", "township"),
    ("qsx", "青石乡人民政府", "township"),
    ("yjglj", "演示县应急管理局", "department"),
]

STAFF: list[tuple[str, str, Role, str | None]] = [
    ("admin", "系统管理员", Role.ADMIN, None),
    ("banzhang", "周班长", Role.SUPERVISOR, None),
    ("op01", "话务员林晓", Role.OPERATOR, None),
    ("op02", "话务员陈静", Role.OPERATOR, None),
    ("op03", "话务员王磊", Role.OPERATOR, None),
    ("sw_lly", "供水公司联络员", Role.LIAISON, "sw"),
    ("cgj_lly", "城管局联络员", Role.LIAISON, "cgj"),
    ("sthjj_lly", "生态环境联络员", Role.LIAISON, "sthjj"),
    ("rsj_lly", "人社局联络员", Role.LIAISON, "rsj"),
    ("ddzx_lly", "督办中心联络员", Role.LIAISON, "ddzx"),
]

# (minutes before now, caller, content, address, sub-category name, department, what happens next)
TICKETS: list[tuple[int, str, str, str | None, str | None, str | None, list[str]]] = [
    (
        60 * 30,
        "13900001111",
        "河西路18号小区从昨晚开始停水，家里有老人，什么时候能恢复？",
        "河西路18号",
        "停水",
        "sw",
        ["dispatch", "sign", "reply", "approve", "callback_satisfied"],
    ),
    (
        60 * 26,
        "13900002222",
        "城关街道夜市摊点占用人行道，晚上十一点后还很吵。",
        "城关街道人民路夜市",
        "占道经营",
        "cgj",
        ["dispatch", "sign", "reply_stall"],  # the reply waits for the hotline's review
    ),
    (
        60 * 20,
        "13900003333",
        "隔壁工地每天晚上十点以后还在施工，噪音很大影响休息。",
        "滨河新村三期旁工地",
        "噪音扰民",
        "sthjj",
        ["dispatch"],
    ),
    (
        60 * 8,
        "13900004444",
        "在某装修公司干了三个月，老板一直拖着两个月工资不给。",
        None,
        "拖欠工资",
        "rsj",
        ["dispatch", "return"],
    ),
    (60 * 4, "13900005555", "请问社保卡丢了去哪里补办？", None, None, None, ["answer"]),
    (90, "13900006666", "小区门口的路灯坏了一排，晚上很黑。", "幸福路东段", "路灯损坏", "cgj", []),
    (
        30,
        "13900007777",
        "学校门口那段路塌了一个大坑，有车陷进去了。",
        "育才路小学门口",
        "道路塌陷",
        "ddzx",
        ["dispatch", "sign"],
    ),
]


def load_departments(session: Session) -> None:
    for code, name, kind in DEPARTMENTS:
        upsert_department(session, code, name, kind)


def load_staff(session: Session, now: datetime) -> dict[str, User]:
    by_code = {d.code: d.id for d in session.scalars(select(Department))}
    users = {}
    for username, name, role, dept in STAFF:
        existing = session.scalar(select(User).where(User.username == username))
        users[username] = existing or create_user(
            session, username, DEMO_PASSWORD, role, name, now, by_code[dept] if dept else None
        )
    return users


# What a demo ticket goes through after it is registered: (who acts, action, body).
STEPS: dict[str, tuple[str, Action, BaseModel]] = {
    "sign": ("liaison", Action.SIGN, schemas.NoteBody(note="已签收，安排人员处理")),
    "reply": ("liaison", Action.REPLY, schemas.ReplyBody(result="已派抢修人员到场，管道修复后已恢复供水。")),
    "reply_stall": (
        "liaison",
        Action.REPLY,
        schemas.ReplyBody(result="已对夜市摊点进行规范，要求晚十点后停止经营，城管中队将持续巡查。"),
    ),
    "approve": ("operator", Action.APPROVE_REPLY, schemas.NoteBody(note="答复内容属实，同意回复市民")),
    "return": (
        "liaison",
        Action.RETURN,
        schemas.ReasonBody(reason="用人单位注册地不在本县，建议改派劳动监察大队"),
    ),
    "answer": (
        "operator",
        Action.ANSWER_ON_SPOT,
        schemas.AnswerOnSpotBody(answer="可携带身份证到县人社局社保窗口或合作银行网点补办。"),
    ),
    "callback_satisfied": (
        "operator",
        Action.RECORD_CALLBACK,
        schemas.CallbackBody(result="satisfied", solved=True),
    ),
}


def load_tickets(ctx: HotlineContext, session: Session, users: dict[str, User], now: datetime) -> int:
    if session.scalar(select(func.count()).select_from(Ticket)):
        return 0  # demo tickets only go into an empty hotline
    operator = actor_of(users["op01"])
    liaisons = {u.department.code: actor_of(u) for u in users.values() if u.department}
    clock = ManualClock(now)
    dispatch = ctx.settings.dispatch
    service = TicketService(session, ctx.rules, clock, dispatch.ticket_number_digits, dispatch.review_replies)
    for minutes_ago, phone, content, address, sub_name, dept, steps in TICKETS:
        clock.set(now - timedelta(minutes=minutes_ago))
        body = schemas.TicketCreate(
            content=content,
            caller_phone=phone,
            address=address,
            disclosure_consent="callback_satisfied" in steps,
        )
        number = service.register(operator, body).number
        for step in steps:
            clock.advance(timedelta(minutes=7))
            if step == "dispatch":
                sub_id = session.scalar(select(SubCategory.id).where(SubCategory.name == sub_name))
                service.act(
                    number,
                    operator,
                    Action.DISPATCH,
                    schemas.DispatchBody(department=dept, subcategory_id=sub_id),
                )
                continue
            if step == "approve" and not dispatch.review_replies:
                continue  # without the hotline's review a reply is approved as it is given
            who, action, body = STEPS[step]
            service.act(number, operator if who == "operator" else liaisons[dept], action, body)
    return len(TICKETS)


def load_demo(ctx: HotlineContext, history_days: int = 0) -> list[str]:
    """The demo county; `history_days` of past tickets too (for the league, trends and reports)."""
    from hotline.demo_history import load_history

    now = ctx.clock.now()
    with ctx.unit_of_work() as session:
        load_departments(session)
        warnings = sync_category_tree(
            session, load_category_tree(ctx.settings.resolve(ctx.settings.dispatch.category_tree))
        )
        users = load_staff(session, now)
        count = load_tickets(ctx, session, users, now)
        past = load_history(ctx, session, history_days, now)
        entries = load_knowledge_base(session, now)
        seats = load_seats(ctx, session)
    return [
        *warnings,
        f"{len(DEPARTMENTS)} departments, {len(STAFF)} users, {count} new tickets, "
        f"{entries} new knowledge-base entries, {seats} seats, "
        f"{past} tickets of the past {history_days} days",
    ]


def load_knowledge_base(session: Session, now: datetime) -> int:
    """The demo county's own knowledge base (knowledge_base/demo_kb.jsonl), into an empty one only."""
    if session.scalar(select(func.count()).select_from(KbEntry)):
        return 0
    return len(import_jsonl(session, DEMO_KB.read_bytes(), now, changed_by="演示数据"))


def load_seats(ctx: HotlineContext, session: Session) -> int:
    """The configured seat extensions (1001-1024 by default) as rows, so the pages show the seats
    even before the call centre has been started once."""
    from callcenter.service import SeatService

    SeatService(session, ctx.clock).ensure_seats(ctx.settings.callcenter.seats)
    return len(ctx.settings.callcenter.seats)
