"""FastAPI dependencies shared by every package's views: the context, a session, the acting user."""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session
from sqlalchemy.orm.exc import StaleDataError

from dispatch.errors import ConcurrentChange
from dispatch.service import TicketService
from dispatch.state_machine import Actor
from hotline.accounts.models import Role, User
from hotline.accounts.service import authenticate_password, authenticate_token
from hotline.context import HotlineContext


def get_context(request: Request) -> HotlineContext:
    return request.app.state.ctx


ContextDep = Annotated[HotlineContext, Depends(get_context)]


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
    except (StaleDataError, OperationalError, IntegrityError) as exc:
        session.rollback()
        raise ConcurrentChange(
            "the change collided with another one at the same moment; reload and try again",
            "与他人的操作冲突，请刷新后重试",
        ) from exc


def actor_of(user: User) -> Actor:
    return Actor(user.id, user.display_name, Role(user.role), user.department_id)


_UNAUTHORIZED = HTTPException(
    status_code=status.HTTP_401_UNAUTHORIZED,
    detail="authentication required: 'Authorization: Bearer <token>' or HTTP Basic",
    headers={"WWW-Authenticate": 'Basic realm="hotline", Bearer'},
)


def _user_from_header(header: str, session: Session, allow_basic: bool) -> User | None:
    scheme, _, credentials = header.partition(" ")
    if scheme.lower() == "bearer" and credentials:
        return authenticate_token(session, credentials.strip())
    if scheme.lower() == "basic" and credentials and allow_basic:
        try:
            username, _, password = base64.b64decode(credentials, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return authenticate_password(session, username, password)
    return None


def get_user(request: Request, session: SessionDep, ctx: ContextDep) -> User:
    header = request.headers.get("authorization", "")
    user = _user_from_header(header, session, ctx.settings.auth.api_basic_auth) if header else None
    if user is None:
        raise _UNAUTHORIZED
    return user


UserDep = Annotated[User, Depends(get_user)]


def get_actor(user: UserDep) -> Actor:
    return actor_of(user)


ActorDep = Annotated[Actor, Depends(get_actor)]


def get_tickets(session: SessionDep, ctx: ContextDep) -> TicketService:
    return ctx.tickets(session)


TicketsDep = Annotated[TicketService, Depends(get_tickets)]
