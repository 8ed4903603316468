"""Open311 GeoReport v2 (XML and JSON): our sub-categories as services, service requests as tickets.

Field names, the discovery document, the jurisdiction_id parameter and the error shape (an array
of {code, description}) follow the specification. Posting needs an app's API key (config
`[intake.open311] api_keys`); a posted request becomes a ticket of channel "app". Reading is public
and shows only tickets not marked private, with personal data scrubbed from the text.
"""

from __future__ import annotations

import hmac
import re
from datetime import datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from pydantic.json_schema import SkipJsonSchema
from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.orm import Session

from core.errors import NotFound, NotPermitted
from dispatch import schemas
from dispatch.context import DispatchContext
from dispatch.intake import channel
from dispatch.intake.errors import IntakeError
from dispatch.intake.models import Open311Request
from dispatch.intake.ratelimit import RateLimiter
from dispatch.intake.scrubber import scrub_text
from dispatch.models import Channel, SubCategory, Ticket
from dispatch.states import TicketState

SPEC = "http://wiki.open311.org/GeoReport_v2"
CLOSED_STATES = frozenset({TicketState.REPLIED, TicketState.ARCHIVED, TicketState.CLOSED, TicketState.MERGED})
PHONE = re.compile(r"^\+?[0-9][0-9-]{2,19}$")
Short = Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)]


class ServiceRequestIn(BaseModel):
    """The form fields of POST requests.json (attribute[…] fields are accepted and ignored)."""

    model_config = ConfigDict(extra="ignore")
    api_key: Annotated[str, StringConstraints(max_length=128)] | None = None
    jurisdiction_id: Short | None = None
    service_code: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, pattern=r"\S", max_length=16)
    ]
    # Form fields have no null: an absent coordinate is left out, never sent as "null".
    lat: Annotated[float, Field(ge=-90, le=90)] | SkipJsonSchema[None] = None
    long: Annotated[float, Field(ge=-180, le=180)] | SkipJsonSchema[None] = None
    address_string: Annotated[str, StringConstraints(strip_whitespace=True, max_length=256)] | None = None
    address_id: Short | None = None
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254)] | None = None
    device_id: Short | None = None
    account_id: Short | None = None
    first_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=30)] | None = None
    last_name: Annotated[str, StringConstraints(strip_whitespace=True, max_length=30)] | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=24)] | None = None
    description: Annotated[str, StringConstraints(strip_whitespace=True, max_length=4000)] | None = None
    media_url: Annotated[str, StringConstraints(strip_whitespace=True, max_length=1024)] | None = None


class RequestQuery(BaseModel):
    """The query of GET requests.json."""

    model_config = ConfigDict(extra="ignore")
    jurisdiction_id: Short | None = None
    service_request_id: Annotated[str, StringConstraints(max_length=2000)] | None = None
    service_code: Annotated[str, StringConstraints(max_length=200)] | None = None
    start_date: Annotated[str, StringConstraints(max_length=40)] | None = None
    end_date: Annotated[str, StringConstraints(max_length=40)] | None = None
    status: Annotated[str, StringConstraints(max_length=20)] | None = None


class Service(BaseModel):
    service_code: str
    service_name: str
    description: str
    metadata: bool
    type: str
    keywords: str
    group: str


class ServiceDefinition(BaseModel):
    service_code: str
    attributes: list[dict[str, object]]


class Created(BaseModel):
    service_request_id: str
    service_notice: str
    account_id: str | None


class ServiceRequestOut(BaseModel):
    service_request_id: str
    status: str
    status_notes: str | None
    service_name: str | None
    service_code: str | None
    description: str
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: str
    updated_datetime: str
    expected_datetime: str | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float | None
    long: float | None
    media_url: str | None


class Open311:
    def __init__(self, ctx: DispatchContext) -> None:
        self.ctx = ctx
        self.settings = ctx.settings.intake
        self.zone = ZoneInfo(ctx.settings.hotline.timezone)

    # ---- discovery and services ----------------------------------------------------------------

    def discovery(self, base_url: str) -> dict[str, object]:
        return {
            "changeset": "2026-11-22T00:00:00+08:00",
            "contact": f"{self.ctx.settings.hotline.name}（12345）",
            "key_service": "API keys are issued by the hotline's administrator (config [intake.open311]).",
            "endpoints": [
                {
                    "specification": SPEC,
                    "url": base_url.rstrip("/") + "/open311/v2",
                    "changeset": "2026-11-22T00:00:00+08:00",
                    "type": "production",
                    "formats": ["text/xml", "application/json"],
                }
            ],
        }

    def check_jurisdiction(self, jurisdiction_id: str | None) -> None:
        if jurisdiction_id and jurisdiction_id != self.settings.jurisdiction_id:
            raise NotFound(
                f"jurisdiction_id {jurisdiction_id!r} not found (this server serves "
                f"{self.settings.jurisdiction_id!r})",
                "jurisdiction_id 不存在",
            )

    @staticmethod
    def _open_services(session: Session) -> list[SubCategory]:
        rows = session.scalars(
            select(SubCategory).where(SubCategory.active).order_by(SubCategory.id)
        ).unique()
        # 简单咨询 is answered on the call: nothing for an app to report.
        return [s for s in rows if s.category.handling != "on_the_spot"]

    def services(self, session: Session) -> list[Service]:
        return [
            Service(
                service_code=str(s.id),
                service_name=s.name,
                description=f"{s.category.name}·{s.name}，办理时限 {s.deadline_days} 个工作日",
                metadata=False,
                type="realtime",
                keywords=s.category.name,
                group=s.category.name,
            )
            for s in self._open_services(session)
        ]

    def _service(self, session: Session, code: str) -> SubCategory | None:
        if not code.isdigit() or len(code) > 9:
            return None
        return next((s for s in self._open_services(session) if s.id == int(code)), None)

    def definition(self, session: Session, code: str) -> ServiceDefinition:
        if self._service(session, code) is None:
            raise NotFound(f"service_code {code!r} not found", "服务类型不存在")
        return ServiceDefinition(service_code=code, attributes=[])

    # ---- posting ---------------------------------------------------------------------------------

    def _app_of(self, api_key: str | None) -> str:
        for app, key in self.settings.open311.api_keys.items():
            if api_key and hmac.compare_digest(key, api_key):
                return app
        raise NotPermitted("api_key was not provided or is invalid", "api_key 缺失或无效")

    def post(self, data: ServiceRequestIn, client: str | None = None) -> Created:
        self.check_jurisdiction(data.jurisdiction_id)
        app = self._app_of(data.api_key)
        RateLimiter(self.ctx.sessions, self.ctx.clock).hit(
            "open311_post", app, self.settings.open311_posts_per_key, "提交"
        )
        if not data.description:
            raise IntakeError("description is required", "缺少问题描述（description）")
        if (data.lat is None) != (data.long is None):
            raise IntakeError("lat and long go together", "lat 与 long 须同时提供")
        if data.lat is None and not data.address_string and not data.address_id:
            raise IntakeError(
                "a location is required: lat and long, address_string or address_id",
                "缺少位置：lat/long、address_string 或 address_id",
            )
        phone = data.phone.replace(" ", "") if data.phone else None
        if phone and not PHONE.fullmatch(phone):
            raise IntakeError("phone is not a phone number", "phone 不是有效的电话号码")
        name = "".join(p for p in (data.last_name, data.first_name) if p) or None
        with self.ctx.unit_of_work() as session:
            sub = self._service(session, data.service_code)
            if sub is None:
                raise IntakeError(f"service_code {data.service_code!r} not found", "服务类型不存在")
            body = schemas.TicketCreate(
                content=data.description,
                channel=Channel.APP,
                caller_phone=phone,
                caller_name=name,
                address=data.address_string or None,
                subcategory_id=sub.id,
            )
            registered = channel.register(
                self.ctx.tickets(session), f"Open311·{app}", body, via="api", ip=client
            )
            session.add(
                Open311Request(
                    ticket_id=registered.ticket.id,
                    app=app,
                    service_code=data.service_code,
                    lat=data.lat,
                    long=data.long,
                    address_string=data.address_string or None,
                    email=data.email or None,
                    device_id=data.device_id,
                    account_id=data.account_id,
                    media_url=data.media_url or None,
                )
            )
            number = registered.number
        registered.announce(self.ctx.events)
        return Created(
            service_request_id=number,
            service_notice=f"已受理，工单号 {number}，可凭工单号与手机号后四位查询办理进度",
            account_id=data.account_id,
        )

    # ---- reading ---------------------------------------------------------------------------------

    def _iso(self, value: datetime | None) -> str | None:
        return value.replace(tzinfo=self.zone).isoformat() if value else None

    def _local(self, text: str, field: str) -> datetime:
        try:
            value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
        except ValueError:
            raise IntakeError(f"{field} is not an ISO 8601 date-time", f"{field} 不是有效的时间") from None
        return value.astimezone(self.zone).replace(tzinfo=None) if value.tzinfo else value

    def _out(self, ticket: Ticket, extra: Open311Request | None) -> ServiceRequestOut:
        state = TicketState(ticket.state)
        names, phones = [ticket.caller_name], [ticket.caller_phone]
        return ServiceRequestOut(
            service_request_id=ticket.number,
            status="closed" if state in CLOSED_STATES else "open",
            # Only a closed ticket's reply the hotline approved: never a draft, never one under review.
            status_notes=scrub_text(ticket.reply_text, names, phones) or None
            if state in CLOSED_STATES and ticket.reply_approved_at is not None
            else None,
            service_name=ticket.subcategory.name if ticket.subcategory else None,
            service_code=str(ticket.subcategory_id) if ticket.subcategory_id else None,
            description=scrub_text(ticket.content, names, phones),
            agency_responsible=ticket.lead_department.name if ticket.lead_department else None,
            service_notice=None,
            requested_datetime=self._iso(ticket.created_at) or "",
            updated_datetime=self._iso(ticket.updated_at) or "",
            expected_datetime=self._iso(ticket.deadline),
            address=scrub_text(ticket.address, names, phones) or None,
            address_id=None,
            zipcode=None,
            lat=extra.lat if extra else None,
            long=extra.long if extra else None,
            media_url=extra.media_url if extra else None,
        )

    @staticmethod
    def _public() -> ColumnElement[bool]:
        """What an app may read: what a citizen agreed to publish, and what apps reported themselves."""
        return or_(
            Ticket.disclosure_consent.is_(True),
            Ticket.channel.in_([Channel.APP.value, Channel.OPEN311.value]),
        )

    def _rows(
        self, session: Session, *conditions: ColumnElement[bool], limit: int
    ) -> list[ServiceRequestOut]:
        rows = session.execute(
            select(Ticket, Open311Request)
            .outerjoin(Open311Request, Open311Request.ticket_id == Ticket.id)
            .where(Ticket.private.is_(False), self._public(), *conditions)
            .order_by(Ticket.created_at.desc(), Ticket.id.desc())
            .limit(limit)
        ).unique()
        return [self._out(ticket, extra) for ticket, extra in rows]

    def request(self, session: Session, request_id: str) -> list[ServiceRequestOut]:
        found = self._rows(session, Ticket.number == request_id, limit=1)
        if not found:
            raise NotFound(f"service_request_id {request_id!r} not found", "工单不存在")
        return found

    def requests(self, session: Session, query: RequestQuery) -> list[ServiceRequestOut]:
        self.check_jurisdiction(query.jurisdiction_id)
        limit = self.settings.open311.max_results
        conditions: list[ColumnElement[bool]] = []
        if query.service_request_id:
            ids = [i.strip() for i in query.service_request_id.split(",") if i.strip()]
            return self._rows(session, Ticket.number.in_(ids[:limit]), limit=limit)
        end = self._local(query.end_date, "end_date") if query.end_date else self.ctx.clock.now()
        start = (
            self._local(query.start_date, "start_date")
            if query.start_date
            else end - timedelta(days=self.settings.open311.default_days)
        )
        if start > end:
            raise IntakeError("start_date is after end_date", "start_date 晚于 end_date")
        conditions += [Ticket.created_at >= start, Ticket.created_at <= end]
        if query.service_code:
            codes = [c.strip() for c in query.service_code.split(",") if c.strip()]
            if not all(c.isdigit() and len(c) <= 9 for c in codes):
                raise IntakeError("service_code must be codes from services.json", "service_code 无效")
            conditions.append(Ticket.subcategory_id.in_([int(c) for c in codes]))
        if query.status:  # one status or a comma list ("open,closed"), as the specification allows
            wanted = {s.strip() for s in query.status.split(",") if s.strip()}
            if not wanted or not wanted <= {"open", "closed"}:
                raise IntakeError("status must be open, closed or both", "status 只能为 open、closed 或两者")
            closed = Ticket.state.in_([s.value for s in CLOSED_STATES])
            if wanted != {"open", "closed"}:
                conditions.append(closed if wanted == {"closed"} else ~closed)
        return self._rows(session, *conditions, limit=limit)
