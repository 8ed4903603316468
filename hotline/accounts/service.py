"""Creating users, checking passwords and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from hotline.accounts.models import ApiToken, Role, User

_hasher = PasswordHasher()


class AccountError(ValueError):
    """A user cannot be created or changed as asked."""


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise AccountError("password must have at least 8 characters")
    return _hasher.hash(password)


def verify_password(user: User, password: str) -> bool:
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def create_user(
    session: Session,
    username: str,
    password: str,
    role: Role,
    display_name: str,
    now: datetime,
    department_id: int | None = None,
) -> User:
    if (role == Role.LIAISON) != (department_id is not None):
        raise AccountError("a liaison needs a department, and only a liaison has one")
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"username {username!r} is taken")
    user = User(
        username=username,
        display_name=display_name,
        role=role.value,
        department_id=department_id,
        password_hash=hash_password(password),
        active=True,
        failed_logins=0,
        created_at=now,
    )
    session.add(user)
    session.flush()
    return user


def authenticate_password(session: Session, username: str, password: str) -> User | None:
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or not verify_password(user, password):
        return None
    return user


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, user: User, now: datetime, label: str = "") -> str:
    """Create a new API token and return it; it is shown once and only its hash is kept."""
    token = secrets.token_urlsafe(32)
    session.add(ApiToken(user_id=user.id, token_sha256=_digest(token), label=label, created_at=now))
    session.flush()
    return token


def authenticate_token(session: Session, token: str) -> User | None:
    row = session.scalar(
        select(ApiToken).where(ApiToken.token_sha256 == _digest(token), ApiToken.revoked.is_(False))
    )
    if row is None or not row.user.active:
        return None
    return row.user
