"""Who acts on something: a logged-in person or the hotline's own system. Every domain records its
actions against an `Actor`, so it lives on the ground floor."""

from __future__ import annotations

from dataclasses import dataclass

from core.accounts.models import Role, User


@dataclass(frozen=True)
class Actor:
    """A logged-in user or the hotline's own system (user_id None)."""

    user_id: int | None
    name: str
    role: Role
    department_id: int | None = None

    @classmethod
    def system(cls, name: str = "系统") -> Actor:
        return cls(None, name, Role.SYSTEM)


def actor_of(user: User) -> Actor:
    return Actor(user.id, user.display_name, Role(user.role), user.department_id)
