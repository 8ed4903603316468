"""The organisation the hotline works with: departments, enterprises and towns (承办单位). Users belong
to one, knowledge-base entries and tickets name one, so they live on the ground floor."""

from __future__ import annotations

from sqlalchemy import Boolean, String
from sqlalchemy.orm import Mapped, mapped_column

from core.db import Base


class Department(Base):
    __tablename__ = "departments"

    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128))
    # "department" (职能部门), "supervision" (处置督办中心), "enterprise" (水电气), "township" (街镇)
    kind: Mapped[str] = mapped_column(String(16), default="department")
    phone: Mapped[str | None] = mapped_column(String(32))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
