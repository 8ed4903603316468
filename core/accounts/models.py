"""Who works with the hotline: operators, department liaisons, supervisors, admins."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column, relationship

from core.db import Base


class Role(StrEnum):
    OPERATOR = "operator"  # 话务员
    LIAISON = "liaison"  # 部门联络员, bound to one department
    SUPERVISOR = "supervisor"  # 督办/班长
    ADMIN = "admin"
    SYSTEM = "system"  # the hotline's own sweeps and survey calls


ROLE_LABELS = {
    Role.OPERATOR: "话务员",
    Role.LIAISON: "部门联络员",
    Role.SUPERVISOR: "督办员",
    Role.ADMIN: "系统管理员",
    Role.SYSTEM: "系统",
}


class User(Base):
    __tablename__ = "users"
    __table_args__ = (
        CheckConstraint(
            "role IN ('operator', 'liaison', 'supervisor', 'admin', 'system')", name="role_known"
        ),
        # A liaison always belongs to a department; nobody else is bound to one.
        CheckConstraint("(role = 'liaison') = (department_id IS NOT NULL)", name="liaison_has_department"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(64))
    role: Mapped[str] = mapped_column(String(16))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("departments.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(256))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    failed_logins: Mapped[int] = mapped_column(Integer, default=0)
    locked_until: Mapped[datetime | None] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime)

    department = relationship("Department", lazy="joined")

    @property
    def role_enum(self) -> Role:
        return Role(self.role)


class ApiToken(Base):
    """A bearer token for the JSON API; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    revoked: Mapped[bool] = mapped_column(Boolean, default=False)

    user: Mapped[User] = relationship(lazy="joined")
