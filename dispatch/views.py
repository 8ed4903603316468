"""JSON API of the ticket core, under /api/. One endpoint per action, each with its own body schema."""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Body, Query, status
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select

from callcenter.views import CallUid, check_own_call, check_staff, record_out
from core import semantics
from core.accounts.actor import actor_of
from core.departments import Department
from core.web import ActorDep, SessionDep, UserDep, api_router, commit
from dispatch import schemas
from dispatch.desk import DeskDep, DispatchContextDep
from dispatch.duplicates import Duplicate, DuplicateFinder
from dispatch.flows import link_call
from dispatch.models import Category
from dispatch.states import ACTION_LABELS, Action

router = api_router(prefix="/api", tags=["tickets"])

NumberPath = Annotated[str, schemas.StringConstraints(pattern=r"^[0-9]{8}-[0-9]{3,8}$")]


class RevealBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=4, max_length=200, description="why the full number is needed (audited)")


class Revealed(BaseModel):
    number: str
    caller_phone: str | None


@router.post("/tickets/{number}/reveal-phone")
def reveal_phone(number: NumberPath, body: RevealBody, desk: DeskDep) -> Revealed:
    """A liaison sees the caller's number masked; to call the citizen back they ask for it with a
    reason, which goes into the audit log with who and when."""
    return Revealed(number=number, caller_phone=desk.reveal_phone(number, body.reason.strip()))


class Me(BaseModel):
    username: str
    display_name: str
    role: str
    department: str | None


class SubCategoryOut(BaseModel):
    id: int
    name: str
    deadline_days: int
    default_department: str | None


class CategoryOut(BaseModel):
    id: int
    name: str
    code: str
    handling: str
    min_days: int
    max_days: int
    default_department: str | None
    subcategories: list[SubCategoryOut]


@router.get("/me", tags=["system"])
def me(user: UserDep) -> Me:
    return Me(
        username=user.username,
        display_name=user.display_name,
        role=user.role,
        department=user.department.code if user.department else None,
    )


@router.get("/departments", tags=["catalogue"])
def list_departments(session: SessionDep, _actor: ActorDep) -> list[schemas.DepartmentOut]:
    rows = session.scalars(select(Department).where(Department.active).order_by(Department.id))
    return [schemas.DepartmentOut.model_validate(d) for d in rows]


@router.get("/categories", tags=["catalogue"])
def list_categories(session: SessionDep, _actor: ActorDep) -> list[CategoryOut]:
    categories = session.scalars(select(Category).order_by(Category.sort_order)).unique()
    return [
        CategoryOut(
            id=c.id,
            name=c.name,
            code=c.code,
            handling=c.handling,
            min_days=c.min_days,
            max_days=c.max_days,
            default_department=c.default_department.code if c.default_department else None,
            subcategories=[
                SubCategoryOut(
                    id=s.id,
                    name=s.name,
                    deadline_days=s.deadline_days,
                    default_department=s.default_department.code if s.default_department else None,
                )
                for s in c.subcategories
                if s.active
            ],
        )
        for c in categories
    ]


# Every endpoint goes through the desk: views of personal data and actions are audited, changes
# are published to the live pages.


@router.post("/tickets", status_code=status.HTTP_201_CREATED)
def create_ticket(body: schemas.TicketCreate, desk: DeskDep) -> schemas.TicketOut:
    return desk.out(desk.register(body))


@router.get("/tickets")
def list_tickets(flt: Annotated[schemas.TicketFilter, Query()], desk: DeskDep) -> schemas.TicketPage:
    rows, total = desk.list(flt)
    return schemas.TicketPage(total=total, items=[desk.out(t) for t in rows])


@router.get("/tickets/{number}")
def get_ticket(number: NumberPath, desk: DeskDep) -> schemas.TicketOut:
    return desk.out(desk.get(number))


@router.get("/tickets/{number}/events")
def ticket_events(number: NumberPath, desk: DeskDep) -> list[schemas.EventOut]:
    return [schemas.EventOut.model_validate(e) for e in desk.get(number).events]


def _action_endpoint(action: Action, body_type: type[BaseModel]) -> Callable[..., Any]:
    def endpoint(*, number: NumberPath, body: Any, desk: DeskDep) -> schemas.TicketOut:
        return desk.out(desk.act(number, action, body if body is not None else body_type()))

    # Actions whose fields are all optional (sign, supervise …) may be posted without a body.
    if any(field.is_required() for field in body_type.model_fields.values()):
        endpoint.__annotations__["body"] = body_type
    else:
        endpoint.__annotations__["body"] = Annotated[body_type | None, Body()]
        endpoint.__kwdefaults__ = {"body": None}
    endpoint.__name__ = f"ticket_{action.value}"
    return endpoint


for _action, _body in schemas.ACTION_BODIES.items():
    router.add_api_route(
        f"/tickets/{{number}}/{_action.value}",
        _action_endpoint(_action, _body),
        methods=["POST"],
        summary=f"{ACTION_LABELS[_action]} ({_action.value})",
        response_model=schemas.TicketOut,
    )


class TicketLinkBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: str = Field(pattern=r"^[0-9]{8}-[0-9]{3,8}$", description="the ticket this call became")


@router.post("/calls/{uid}/ticket", tags=["call centre"])
def link_ticket(
    uid: CallUid, body: TicketLinkBody, user: UserDep, session: SessionDep, ctx: DispatchContextDep
) -> dict[str, Any]:
    """Record which ticket a call became (the seat console does it when it registers the ticket)."""
    check_staff(user)
    check_own_call(uid, user, session, ctx)
    ticket = ctx.tickets(session).get(body.number, actor_of(user))
    record = link_call(session, ctx.clock, uid, ticket)
    commit(session)
    return record_out(record, masked=False)


# ---- duplicate requests at intake (附加来电) -------------------------------------------------------


class DuplicateOut(Duplicate):
    summary: str  # what the console says, e.g. 可能与 20261207-0012 为同一诉求，已有 3 位来电人


def _summary(d: Duplicate) -> str:
    said = f"可能与 {d.number} 为同一诉求，已有 {d.callers} 位来电人"
    return f"{said}；此号码第 {d.calls_by_this_number} 次反映此事（重复来电）" if d.repeat else said


@router.get("/duplicates")
def duplicates(
    text: Annotated[str, Query(min_length=1, max_length=4000, description="what the caller said so far")],
    user: UserDep,
    session: SessionDep,
    ctx: DispatchContextDep,
    address: Annotated[str | None, Query(max_length=256)] = None,
    phone: Annotated[str | None, Query(pattern=r"^\+?[0-9][0-9-]{2,19}$")] = None,
    exclude: Annotated[str | None, Query(pattern=r"^[0-9]{8}-[0-9]{3,8}$")] = None,
) -> list[DuplicateOut]:
    """Open tickets of the last days, in the same place, that are probably the same matter."""
    check_staff(user)
    places = ctx.tickets(session).places
    finder = DuplicateFinder(
        session, places, ctx.settings.dispatch.duplicates, ctx.clock, semantics.encoder()
    )
    found = finder.find(text, address, phone, exclude)
    return [DuplicateOut(**d.model_dump(), summary=_summary(d)) for d in found]
