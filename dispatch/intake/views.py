"""Endpoints of the other channels: Open311 GeoReport v2 under /open311, the 110 hand-over and its
reverse under /api/police and /api/calls, and the citizens' public JSON (status look-up, disclosure)."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Header, Query, Request, Response, status
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import StringConstraints
from starlette.exceptions import HTTPException as StarletteHTTPException

from core import audit
from core.accounts.models import Role
from core.errors import HotlineError, UnsupportedMediaType
from core.web import (
    NUL_DETAIL,
    ApiRoute,
    SessionDep,
    UserDep,
    api_router,
    audit_fields,
    client_ip,
    commit,
    require_role,
)
from dispatch.desk import DispatchContextDep as ContextDep
from dispatch.intake import citizen, disclosure, handover, open311_xml
from dispatch.intake.models import HandoverDirection
from dispatch.intake.open311 import (
    Created,
    Open311,
    RequestQuery,
    Service,
    ServiceDefinition,
    ServiceRequestIn,
    ServiceRequestOut,
)

# ---- Open311 GeoReport v2 ------------------------------------------------------------------------


def open311_error(status_code: int, description: str, xml: bool = False) -> Response:
    """The specification's error shape: an array of {code, description} (in XML: <errors>)."""
    if xml:
        return Response(
            open311_xml.errors(status_code, description), status_code, media_type=open311_xml.MEDIA_TYPE
        )
    return JSONResponse(status_code=status_code, content=[{"code": status_code, "description": description}])


def open311_nul_refused(path: str) -> tuple[str, bytes] | None:
    """A NUL in a request under /open311 is refused in the specification's error shape."""
    if not path.startswith("/open311/"):
        return None
    if path.endswith(".xml"):
        return open311_xml.MEDIA_TYPE, open311_xml.errors(400, NUL_DETAIL)
    return "application/json", json.dumps([{"code": 400, "description": NUL_DETAIL}]).encode()


def open311_not_found(path: str) -> Response:
    """Any path under /open311 that is not an endpoint answers in the specification's shape too."""
    return open311_error(404, f"no such Open311 endpoint: {path}", xml=path.endswith(".xml"))


def _xml(root: str, item: str | None, content: Any, status_code: int = 200) -> Response:
    return Response(open311_xml.document(root, item, content), status_code, media_type=open311_xml.MEDIA_TYPE)


class Open311Route(ApiRoute):
    """Every error of an Open311 endpoint, ours or FastAPI's, in the specification's shape."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            xml = request.url.path.endswith(".xml")
            try:
                return await handler(request)
            except HotlineError as exc:
                return open311_error(exc.status, str(exc), xml)
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}" for e in exc.errors()
                )
                return open311_error(400, f"invalid request: {problems}", xml)
            except StarletteHTTPException as exc:
                return open311_error(exc.status_code, str(exc.detail), xml)

        return route


OPEN311_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {
        "description": text,
        "content": {
            "application/json": {"example": [{"code": code, "description": text}]},
            "text/xml": {"example": open311_xml.errors(code, text).decode()},
        },
    }
    for code, text in ((400, "bad request"), (403, "api_key missing or invalid"), (404, "not found"))
}
XML_OK: dict[int | str, dict[str, Any]] = {200: {"content": {"text/xml": {}}, "description": "XML"}}
open311_router = APIRouter(
    prefix="/open311", tags=["open311"], route_class=Open311Route, responses=OPEN311_ERRORS
)
Jurisdiction = Annotated[str | None, Query(max_length=64)]


@open311_router.get("/discovery.json")
def discovery(request: Request, ctx: ContextDep) -> dict[str, Any]:
    return Open311(ctx).discovery(str(request.base_url))


@open311_router.get("/v2/services.json")
def services(ctx: ContextDep, session: SessionDep, jurisdiction_id: Jurisdiction = None) -> list[Service]:
    api = Open311(ctx)
    api.check_jurisdiction(jurisdiction_id)
    return api.services(session)


@open311_router.get("/v2/services/{service_code}.json")
def service_definition(
    service_code: str, ctx: ContextDep, session: SessionDep, jurisdiction_id: Jurisdiction = None
) -> ServiceDefinition:
    api = Open311(ctx)
    api.check_jurisdiction(jurisdiction_id)
    return api.definition(session, service_code)


@open311_router.post("/v2/requests.json", status_code=status.HTTP_201_CREATED)
def post_request(
    data: Annotated[ServiceRequestIn, Form()], ctx: ContextDep, request: Request
) -> list[Created]:
    """Form-encoded, as the specification says; needs an app's api_key."""
    return [Open311(ctx).post(data, client_ip(request))]


@open311_router.get("/v2/requests.json")
def get_requests(
    query: Annotated[RequestQuery, Query()], ctx: ContextDep, session: SessionDep
) -> list[ServiceRequestOut]:
    return Open311(ctx).requests(session, query)


@open311_router.get("/v2/requests/{service_request_id}.json")
def get_request(
    service_request_id: str, ctx: ContextDep, session: SessionDep, jurisdiction_id: Jurisdiction = None
) -> list[ServiceRequestOut]:
    api = Open311(ctx)
    api.check_jurisdiction(jurisdiction_id)
    return api.request(session, service_request_id)


# The same endpoints in XML, which the specification requires (JSON above is its optional format).


@open311_router.get("/discovery.xml", response_class=Response, responses=XML_OK)
def discovery_xml(request: Request, ctx: ContextDep) -> Response:
    return _xml("discovery", None, Open311(ctx).discovery(str(request.base_url)))


@open311_router.get("/v2/services.xml", response_class=Response, responses=XML_OK)
def services_xml(ctx: ContextDep, session: SessionDep, jurisdiction_id: Jurisdiction = None) -> Response:
    return _xml("services", "service", services(ctx, session, jurisdiction_id))


@open311_router.get("/v2/services/{service_code}.xml", response_class=Response, responses=XML_OK)
def service_definition_xml(
    service_code: str, ctx: ContextDep, session: SessionDep, jurisdiction_id: Jurisdiction = None
) -> Response:
    return _xml("service_definition", None, service_definition(service_code, ctx, session, jurisdiction_id))


@open311_router.post(
    "/v2/requests.xml", response_class=Response, status_code=status.HTTP_201_CREATED, responses=XML_OK
)
def post_request_xml(
    data: Annotated[ServiceRequestIn, Form()], ctx: ContextDep, request: Request
) -> Response:
    return _xml("service_requests", "request", post_request(data, ctx, request), status.HTTP_201_CREATED)


@open311_router.get("/v2/requests.xml", response_class=Response, responses=XML_OK)
def get_requests_xml(
    query: Annotated[RequestQuery, Query()], ctx: ContextDep, session: SessionDep
) -> Response:
    return _xml("service_requests", "request", get_requests(query, ctx, session))


@open311_router.get("/v2/requests/{service_request_id}.xml", response_class=Response, responses=XML_OK)
def get_request_xml(
    service_request_id: str, ctx: ContextDep, session: SessionDep, jurisdiction_id: Jurisdiction = None
) -> Response:
    return _xml("service_requests", "request", get_request(service_request_id, ctx, session, jurisdiction_id))


# ---- 110 hand-over ---------------------------------------------------------------------------------

# The police platform's signed hand-over (no login: a partner key and signature) and the staff's side.
police_router = api_router(prefix="/api", tags=["110"])
police_staff_router = api_router(prefix="/api", tags=["110"])
SIGNED_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": handover.HandoverIn.model_json_schema()}},
    }
}


@police_router.post("/police/handovers", openapi_extra=SIGNED_BODY, response_model=handover.HandoverOut)
async def police_handover(
    request: Request,
    ctx: ContextDep,
    response: Response,
    x_partner_key: Annotated[str | None, Header(max_length=128)] = None,
    x_timestamp: Annotated[str | None, Header(max_length=20)] = None,
    x_signature: Annotated[str | None, Header(max_length=128)] = None,
) -> handover.HandoverOut:
    """The police platform hands over a non-police matter: signed (see README), idempotent by
    external_id (201 the first time, 200 with the same ticket afterwards)."""
    body = b""
    async for chunk in request.stream():  # read no more than a hand-over can be
        body += chunk
        if len(body) > handover.MAX_BODY:
            raise handover.too_large()
    signed = handover.verify(ctx, x_partner_key, x_timestamp, x_signature, body)
    if not _is_json(request.headers.get("content-type")):  # checked before anything is created
        raise UnsupportedMediaType(
            "a hand-over must be sent as application/json",
            "移交内容须为 JSON（Content-Type: application/json）",
        )
    result = handover.hand_over(ctx, signed, handover.parse(body), body, client_ip(request))
    response.status_code = status.HTTP_201_CREATED if result.created else status.HTTP_200_OK
    return result


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


@police_staff_router.post("/calls/{uid}/police-handover")
def record_transfer_to_110(
    uid: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.:-]{1,40}$")],
    body: handover.TransferIn,
    user: UserDep,
    ctx: ContextDep,
    session: SessionDep,
    request: Request,
) -> handover.HandoverRecord:
    """What the operator handed to 110 with a call's transfer (recorded against the transfer event)."""
    require_role(user, Role.OPERATOR, Role.SUPERVISOR, Role.ADMIN)
    record = handover.record_transfer(ctx, session, uid, body, user.display_name)
    detail = {"call": uid, "external_id": body.external_id}
    who = audit_fields(request, user)
    audit.record(session, action="police.transfer", ticket_number=body.ticket_number, detail=detail, **who)
    out = handover.handover_out(session, record)
    commit(session)
    return out


@police_staff_router.get("/police/handovers")
def list_police_handovers(
    user: UserDep,
    session: SessionDep,
    direction: HandoverDirection | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[handover.HandoverRecord]:
    require_role(user, Role.SUPERVISOR, Role.ADMIN, Role.OPERATOR)
    return handover.list_handovers(session, direction, limit)


# ---- the citizens' public JSON -------------------------------------------------------------------

public_router = api_router(prefix="/api/public", tags=["public"])


@public_router.post("/status")
def public_status(query: citizen.LookUp, ctx: ContextDep, request: Request) -> citizen.PublicStatus:
    """Ticket number + last four digits of the phone: state, deadline and public reply. Rate-limited."""
    return citizen.look_up(ctx, query, client_ip(request) or "-")  # RateLimited: 429 + Retry-After


@public_router.get("/disclosure")
def public_disclosure(
    ctx: ContextDep,
    session: SessionDep,
    page: Annotated[int, Query(ge=1, le=100_000)] = 1,
    category: Annotated[str | None, Query(pattern=r"^[a-z0-9_]{1,32}$")] = None,
) -> disclosure.DisclosurePage:
    """Closed tickets that are not private, personal data removed."""
    return disclosure.disclosure_page(session, page, ctx.settings.intake.disclosure_page_size, category)
