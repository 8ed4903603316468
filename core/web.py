"""FastAPI dependencies shared by every package's views: the context, a session, the acting user.
Login is enforced here, in one place: a view (or a whole router) that depends on `UserDep` or
`ActorDep` refuses anyone not logged in.

Who is acting comes from an `Authorization` header (bearer token, or HTTP Basic when enabled) for API
clients, or from the pages' signed session cookie. A request authenticated by the cookie must carry
the session's CSRF token on every unsafe method (header `X-CSRF-Token`, or form field `csrf_token`),
so another site cannot make a logged-in browser act.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hmac
import inspect
import json
import re
from collections.abc import Callable, Iterator
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, HTTPException, Request, status
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel, BeforeValidator
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from core import audit
from core.accounts.actor import Actor, actor_of
from core.accounts.models import Role, User
from core.accounts.service import Lockout, LoginResult, authenticate_token, log_in, password_fingerprint
from core.accounts.sessions import SessionData, SessionSigner
from core.context import Context
from core.db import database_fault
from core.errors import NotPermitted

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"


def get_context(request: Request) -> Context:
    return request.app.state.ctx


ContextDep = Annotated[Context, Depends(get_context)]


def get_session(ctx: ContextDep) -> Iterator[Session]:
    """A session per request; views commit with `commit()`, anything else is rolled back."""
    session = ctx.sessions()
    try:
        yield session
    finally:
        session.rollback()
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]


def commit(session: Session) -> None:
    """Commit before answering, so a lost race is reported to the client and never hidden."""
    try:
        session.commit()
    except (StaleDataError, DBAPIError) as exc:
        session.rollback()
        raise database_fault(exc) from exc


class WebError(HTTPException):
    """An HTTP error with a message for screens (`zh`)."""

    def __init__(self, status_code: int, detail: str, zh: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(status_code=status_code, detail=detail, headers=headers)
        self.zh = zh


def unauthorized(
    detail: str = "authentication required: 'Authorization: Bearer <token>' or HTTP Basic",
    zh: str = "请先登录",
) -> WebError:
    return WebError(
        status.HTTP_401_UNAUTHORIZED,
        detail,
        zh,
        headers={"WWW-Authenticate": 'Basic realm="hotline", Bearer'},
    )


CSRF_REFUSED_ZH = "请求缺少有效的安全令牌（CSRF），已拒绝。请刷新页面后重试"


def csrf_refused() -> WebError:
    return WebError(status.HTTP_403_FORBIDDEN, "CSRF token missing or wrong", CSRF_REFUSED_ZH)


# ---- the pages' session cookie -----------------------------------------------------------------


def get_signer(request: Request) -> SessionSigner:
    return request.app.state.signer


def read_session(request: Request) -> SessionData | None:
    ctx: Context = request.app.state.ctx
    return get_signer(request).loads(request.cookies.get(ctx.settings.auth.session_cookie))


def user_of_session(session: Session, data: SessionData | None) -> User | None:
    """The logged-in user of a cookie session, if still active and the password is unchanged."""
    if data is None or data.user_id is None:
        return None
    user = session.get(User, data.user_id)
    if user is None or not user.active or data.fingerprint != password_fingerprint(user):
        return None
    return user


async def submitted_csrf(request: Request) -> str | None:
    """The CSRF token sent with an unsafe request: the header, else the form field."""
    header = request.headers.get(CSRF_HEADER)
    if header or request.method in SAFE_METHODS:
        return header
    content_type = request.headers.get("content-type", "")
    if content_type.startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        value = (await request.form()).get(CSRF_FIELD)
        return value if isinstance(value, str) else None
    return None


CsrfDep = Annotated[str | None, Depends(submitted_csrf)]


def check_csrf(request: Request, data: SessionData | None, submitted: str | None) -> None:
    if request.method in SAFE_METHODS:
        return
    if data is None or not submitted or not hmac.compare_digest(submitted, data.csrf):
        raise csrf_refused()


# ---- API clients: bearer tokens and HTTP Basic ------------------------------------------------------


def lockout_of(ctx: Context) -> Lockout:
    return Lockout(ctx.settings.auth.lockout_attempts, ctx.settings.auth.lockout_minutes)


def client_ip(request: Request) -> str | None:
    return request.client.host if request.client else None


def via_of(request: Request) -> str:
    return "api" if request.url.path.startswith("/api") else "page"


def audit_fields(request: Request, user: User | None = None, username: str = "-") -> dict[str, Any]:
    """Who did something through `request`, for `audit.record`: when, the user (or the name typed at
    a refused login), and how (page or API) and from where."""
    ctx: Context = request.app.state.ctx
    return {
        "at": ctx.clock.now(),
        "username": user.username if user else (username or "-"),
        "user_id": user.id if user else None,
        "role": user.role if user else None,
        "via": via_of(request),
        "ip": client_ip(request),
    }


def checked_login(ctx: Context, request: Request, username: str, password: str) -> LoginResult:
    """A password check that counts failures (committed at once) and audits refusals."""
    with ctx.unit_of_work() as session:
        result = log_in(session, username, password, ctx.clock.now(), lockout_of(ctx))
        if result.user is None:
            action = "login.locked" if result.locked_until else "login.failed"
            audit.record(session, action=action, **audit_fields(request, username=username))
    return result


def _user_from_header(request: Request, header: str, session: Session, ctx: Context) -> User:
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials:
        user = authenticate_token(session, credentials.strip())
        if user is not None:
            return user
    elif scheme.lower() == "basic" and credentials and ctx.settings.auth.api_basic_auth:
        try:
            username, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            raise unauthorized() from None
        result = checked_login(ctx, request, username, password)
        if result.user is not None:
            user = session.get(User, result.user.id)
            assert user is not None
            return user
        if result.locked_until is not None:
            raise unauthorized(
                f"authentication required: account locked until {result.locked_until:%Y-%m-%d %H:%M}",
                result.message_zh,
            )
    raise unauthorized()


def get_user(request: Request, session: SessionDep, ctx: ContextDep, csrf: CsrfDep) -> User:
    header = request.headers.get("authorization", "")
    if header:
        return _user_from_header(request, header, session, ctx)
    data = read_session(request)
    user = user_of_session(session, data)
    if user is None:
        raise unauthorized()
    check_csrf(request, data, csrf)
    return user


UserDep = Annotated[User, Depends(get_user)]


def require_role(user: User, *allowed: Role) -> None:
    """Refuse (403) a user whose role is not one of `allowed`."""
    if Role(user.role) not in allowed:
        raise NotPermitted("your role may not do this", "您的角色无权执行此操作")


def get_actor(user: UserDep) -> Actor:
    return actor_of(user)


ActorDep = Annotated[Actor, Depends(get_actor)]


# ---- times in the JSON API ------------------------------------------------------------------------
# The database keeps the hotline's local wall time (naive). Times leave the API with the hotline's
# UTC offset (RFC 3339, as the OpenAPI format "date-time" says), and times that come in with an
# offset are turned into the hotline's local time before any code compares them.

_zone: ZoneInfo = ZoneInfo("Asia/Shanghai")


def set_api_zone(name: str) -> None:
    global _zone
    _zone = ZoneInfo(name)


def with_offset(value: Any) -> Any:
    """`value` with every naive datetime inside it (models, dicts, lists) given the hotline's zone."""
    if isinstance(value, datetime):
        return value.replace(tzinfo=_zone) if value.tzinfo is None else value
    if isinstance(value, BaseModel):
        changed = {k: with_offset(v) for k, v in value.__dict__.items() if _holds_time(v)}
        return value.model_copy(update=changed) if changed else value
    if isinstance(value, dict):
        return {k: with_offset(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(with_offset(v) for v in value)
    return value


def _holds_time(value: Any) -> bool:
    return isinstance(value, datetime | BaseModel | dict | list | tuple)


def to_local(value: datetime) -> datetime:
    return value.astimezone(_zone).replace(tzinfo=None) if value.tzinfo is not None else value


class ApiRoute(APIRoute):
    """A JSON API route: what the endpoint returns leaves with UTC offsets on its times."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, _offsets_added(endpoint), **kwargs)


def _offsets_added(endpoint: Callable[..., Any]) -> Callable[..., Any]:
    if inspect.iscoroutinefunction(endpoint):

        @functools.wraps(endpoint)
        async def wrapped_async(*args: Any, **kwargs: Any) -> Any:
            return with_offset(await endpoint(*args, **kwargs))

        return wrapped_async

    @functools.wraps(endpoint)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return with_offset(endpoint(*args, **kwargs))

    return wrapped


def api_router(**kwargs: Any) -> APIRouter:
    """An APIRouter of the JSON API (times with their offset)."""
    return APIRouter(route_class=kwargs.pop("route_class", ApiRoute), **kwargs)


# ---- strict inputs: what the schema says, nothing more (no number as a date, no 0/1 as a boolean) --

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _iso_date(value: Any) -> Any:
    if isinstance(value, date) or (isinstance(value, str) and _ISO_DATE.fullmatch(value)):
        return value
    raise ValueError("must be a date YYYY-MM-DD")


def _iso_datetime(value: Any) -> Any:
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_DATE.fullmatch(value[:10])):
        return value
    raise ValueError("must be a date-time YYYY-MM-DDTHH:MM:SS (with its UTC offset)")


def _true_or_false(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise ValueError("must be true or false")


IsoDate = Annotated[date, BeforeValidator(_iso_date)]
Flag = Annotated[bool, BeforeValidator(_true_or_false)]
LocalDateTime = Annotated[datetime, BeforeValidator(_iso_datetime), AfterValidator(to_local)]


# ---- NUL characters ----------------------------------------------------------------------------------
# PostgreSQL cannot store a NUL in text, and no person types one: a request that carries one (in its
# query, a JSON body or a form) is refused before it reaches a view, with the same error shape.

_NUL_IN = {  # how a NUL looks in a query, a JSON body and a form body
    "query": (b"%00", b"\x00"),
    "application/json": (b"\\u0000", b"\x00"),
    "application/x-www-form-urlencoded": (b"%00", b"\x00"),
}


class RefuseNul:
    """`shape(path)` may give another error body for a path: (content type, body), e.g. Open311's."""

    def __init__(self, app: Any, shape: Callable[[str], tuple[str, bytes] | None] | None = None) -> None:
        self.app, self.shape = app, shape

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if any(marker in scope.get("query_string", b"") for marker in _NUL_IN["query"]):
            await self._refuse(scope, send)
            return
        headers = dict(scope.get("headers") or [])
        kind = headers.get(b"content-type", b"").decode("latin-1").split(";")[0].strip().lower()
        if kind not in _NUL_IN:
            await self.app(scope, receive, send)
            return
        body, messages = b"", []
        while True:  # a JSON or form body is small: read it whole, then hand it on unchanged
            message = await receive()
            messages.append(message)
            body += message.get("body", b"")
            if message["type"] != "http.request" or not message.get("more_body"):
                break
        if any(marker in body for marker in _NUL_IN[kind]):
            await self._refuse(scope, send)
            return

        async def replay() -> Any:
            return messages.pop(0) if messages else await receive()

        await self.app(scope, replay, send)

    async def _refuse(self, scope: dict[str, Any], send: Any) -> None:
        shaped = self.shape(scope.get("path", "")) if self.shape else None
        media, body = shaped or ("application/json", NUL_REFUSED)
        await _send_400(send, media, body)


NUL_DETAIL = "text must not contain NUL characters"
NUL_REFUSED = json.dumps(
    {"error": "NulCharacter", "detail": NUL_DETAIL, "detail_zh": "文字中不能含有空字符（NUL）"}
).encode()


async def _send_400(send: Any, media: str, body: bytes) -> None:
    headers = [(b"content-type", media.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})
