"""The category tree and departments: validated from TOML, kept in the database."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlalchemy import select
from sqlalchemy.orm import Session

from core.departments import Department
from core.tomlfile import load_toml_model
from dispatch.models import Category, SubCategory


class CatalogError(ValueError):
    """The category tree file cannot be used; the message names the entry and the reason."""


class SubCategorySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64)
    days: int = Field(ge=0)
    department: str | None = None


class CategorySpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=32)
    code: str = Field(pattern=r"^[a-z_]+$")
    handling: Literal["on_the_spot", "department", "supervision_centre", "emergency"]
    min_days: int = Field(ge=0)
    max_days: int = Field(ge=0)
    default_department: str | None = None
    subcategories: list[SubCategorySpec] = Field(min_length=1)

    @model_validator(mode="after")
    def _deadlines_within_range(self) -> CategorySpec:
        if self.min_days > self.max_days:
            raise ValueError(f"min_days {self.min_days} is above max_days {self.max_days}")
        for sub in self.subcategories:
            if not self.min_days <= sub.days <= self.max_days:
                raise ValueError(
                    f"sub-category {sub.name!r}: {sub.days} working days is outside "
                    f"{self.name}'s range {self.min_days}-{self.max_days}"
                )
        names = [sub.name for sub in self.subcategories]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate sub-category names in {self.name}")
        return self


class CategoryTreeSpec(BaseModel):
    model_config = ConfigDict(extra="forbid")
    category: list[CategorySpec] = Field(min_length=1)


def load_category_tree(path: Path) -> CategoryTreeSpec:
    return load_toml_model(path, CategoryTreeSpec, CatalogError, "category tree file")


def sync_category_tree(session: Session, tree: CategoryTreeSpec) -> list[str]:
    """Create or update categories and sub-categories by name; return warnings (unknown departments)."""
    departments = {d.code: d.id for d in session.scalars(select(Department))}
    warnings: list[str] = []

    def department_id(code: str | None, where: str) -> int | None:
        if code is None:
            return None
        if code not in departments:
            warnings.append(f"{where}: department {code!r} does not exist (yet); left empty")
        return departments.get(code)

    for order, spec in enumerate(tree.category):
        category = session.scalar(select(Category).where(Category.name == spec.name))
        if category is None:
            category = Category(name=spec.name)
            session.add(category)
        category.code, category.handling, category.sort_order = spec.code, spec.handling, order
        category.min_days, category.max_days = spec.min_days, spec.max_days
        category.default_department_id = department_id(spec.default_department, spec.name)
        session.flush()
        existing = {s.name: s for s in category.subcategories}
        for sub_order, sub_spec in enumerate(spec.subcategories):
            sub = existing.get(sub_spec.name)
            if sub is None:
                sub = SubCategory(category_id=category.id, name=sub_spec.name)
                session.add(sub)
            sub.deadline_days, sub.sort_order, sub.active = sub_spec.days, sub_order, True
            sub.default_department_id = department_id(sub_spec.department, f"{spec.name}/{sub_spec.name}")
    session.flush()
    return warnings


def upsert_department(session: Session, code: str, name: str, kind: str = "department") -> Department:
    department = session.scalar(select(Department).where(Department.code == code))
    if department is None:
        department = Department(code=code, name=name, kind=kind, active=True)
        session.add(department)
    else:
        department.name, department.kind = name, kind
    session.flush()
    return department


# ---- reading the catalogue (for the pages' lists and select boxes) -------------------------------


def departments(session: Session, active_only: bool = False) -> list[Department]:
    query = select(Department).order_by(Department.id)
    return list(session.scalars(query.where(Department.active) if active_only else query))


def department_id(session: Session, code: str) -> int | None:
    return session.scalar(select(Department.id).where(Department.code == code))


def categories(session: Session) -> list[Category]:
    """The category tree, in its configured order (sub-categories come with each)."""
    return list(session.scalars(select(Category).order_by(Category.sort_order)).unique())


def subcategory(session: Session, subcategory_id: int) -> SubCategory | None:
    return session.get(SubCategory, subcategory_id)
