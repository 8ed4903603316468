"""Creating users, checking passwords and API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.accounts.models import ROLE_LABELS, ApiToken, Role, User

_hasher = PasswordHasher()
_NEEDS_DEPARTMENT = "a liaison needs a department, and only a liaison has one"
_NEEDS_DEPARTMENT_ZH = "部门联络员必须选择所属部门；其他角色不属于任何部门"


class AccountError(ValueError):
    """A user cannot be created or changed as asked; `zh` is the message for screens."""

    def __init__(self, message: str, zh: str | None = None, status: int = 422) -> None:
        super().__init__(message)
        self.zh, self.status = zh or message, status


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise AccountError("password must have at least 8 characters", "密码至少需要 8 个字符")
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
        raise AccountError(_NEEDS_DEPARTMENT, _NEEDS_DEPARTMENT_ZH)
    if session.scalar(select(User.id).where(User.username == username)) is not None:
        raise AccountError(f"username {username!r} is taken", f"用户名 {username} 已被使用")
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
    """Username and password only; for logins that count failures use `log_in`."""
    user = session.scalar(select(User).where(User.username == username))
    if user is None or not user.active or not verify_password(user, password):
        return None
    return user


# ---- logging in, with a lockout after repeated failures ----------------------------------------


@dataclass(frozen=True)
class Lockout:
    attempts: int  # wrong passwords in a row that lock the account
    minutes: int  # for how long


class LoginRefusal(StrEnum):
    WRONG = "wrong"  # unknown user or wrong password (the two are not told apart)
    LOCKED = "locked"
    INACTIVE = "inactive"


@dataclass(frozen=True)
class LoginResult:
    user: User | None
    refusal: LoginRefusal | None = None
    locked_until: datetime | None = None

    @property
    def message_zh(self) -> str:
        if self.refusal == LoginRefusal.LOCKED and self.locked_until is not None:
            return f"连续输错密码次数过多，账号已锁定至 {self.locked_until:%H:%M}，请稍后再试或联系管理员解锁"
        if self.refusal == LoginRefusal.INACTIVE:
            return "账号已停用，请联系管理员"
        return "用户名或密码错误"


def log_in(session: Session, username: str, password: str, now: datetime, lockout: Lockout) -> LoginResult:
    """Check a password; count failures and lock the account after `lockout.attempts` in a row.

    A locked account is refused even with the right password until the lock expires. The caller
    commits (failures must be committed even though the request itself is refused).
    """
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        _hasher.hash(password or "-")  # same work as a real check: no timing hint that the name is unknown
        return LoginResult(None, LoginRefusal.WRONG)
    if user.locked_until is not None and user.locked_until > now:
        return LoginResult(None, LoginRefusal.LOCKED, user.locked_until)
    if not verify_password(user, password):
        user.failed_logins = (user.failed_logins or 0) + 1
        if user.failed_logins >= lockout.attempts:
            user.locked_until = now + timedelta(minutes=lockout.minutes)
            user.failed_logins = 0
            return LoginResult(None, LoginRefusal.LOCKED, user.locked_until)
        return LoginResult(None, LoginRefusal.WRONG)
    if not user.active:
        return LoginResult(None, LoginRefusal.INACTIVE)
    user.failed_logins, user.locked_until = 0, None
    return LoginResult(user)


def password_fingerprint(user: User) -> str:
    """Changes whenever the password does: a session made before a password change stops working."""
    return hashlib.sha256(user.password_hash.encode()).hexdigest()[:16]


# ---- user administration ------------------------------------------------------------------------


def role_label(role: str) -> str:
    return ROLE_LABELS.get(Role(role), role)


def list_users(session: Session) -> list[User]:
    return list(session.scalars(select(User).where(User.role != Role.SYSTEM.value).order_by(User.username)))


def get_user(session: Session, username: str) -> User:
    user = session.scalar(select(User).where(User.username == username))
    if user is None:
        raise AccountError(f"user {username!r} does not exist", f"用户 {username} 不存在", 404)
    return user


def update_user(
    session: Session,
    username: str,
    *,
    display_name: str | None = None,
    role: Role | None = None,
    department_id: int | None = None,
    active: bool | None = None,
    password: str | None = None,
    unlock: bool = False,
) -> User:
    """Change a user; role and department are checked together (a liaison always has a department)."""
    user = get_user(session, username)
    new_role = role or Role(user.role)
    new_department = department_id if role is not None or department_id is not None else user.department_id
    if new_role != Role.LIAISON:
        new_department = None
    if (new_role == Role.LIAISON) != (new_department is not None):
        raise AccountError(_NEEDS_DEPARTMENT, _NEEDS_DEPARTMENT_ZH)
    if password:
        user.password_hash = hash_password(password)
    if display_name:
        user.display_name = display_name
    user.role, user.department_id = new_role.value, new_department
    if active is not None:
        user.active = active
    if unlock or password:
        user.failed_logins, user.locked_until = 0, None
    session.flush()
    session.refresh(user, ["department"])
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
