"""Checking that the directory refers to itself consistently: a user's department, manager and
positions exist, a department's parent and head exist, and neither managers nor departments go
round in a circle. Checked over what is stored plus what is about to be written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from seamflow.directory.model import DepartmentEntry, PositionEntry, UserEntry
from seamflow.errors import Location, Problem

__all__ = ["Known", "reference_problems"]

Locate = Callable[[str, int, str], Location]


class Known:
    """Departments, positions and users after a write: the stored ones updated by the new ones."""

    def __init__(
        self,
        parents: Mapping[str, str | None],
        positions: set[str],
        managers: Mapping[str, str | None],
    ) -> None:
        self.parents = dict(parents)
        """department id -> parent id"""
        self.positions = set(positions)
        self.managers = dict(managers)
        """user login -> manager login"""

    def add(self, departments: list[DepartmentEntry], positions: list[PositionEntry], users: list[UserEntry]) -> None:
        self.parents.update({d.id: d.parent for d in departments})
        self.positions.update(p.id for p in positions)
        self.managers.update({u.login: u.manager for u in users})


def reference_problems(
    known: Known, departments: list[DepartmentEntry], users: list[UserEntry], locate: Locate
) -> list[Problem]:
    """Every dangling or circular reference among the new rows, at the field that makes it."""
    problems: list[Problem] = []

    def refuse(section: str, index: int, field: str, problem: str, expected: str) -> None:
        problems.append(Problem(locate(section, index, field), problem, expected))

    for i, d in enumerate(departments):
        if d.parent is not None and d.parent not in known.parents:
            refuse("departments", i, "parent", f"department {d.parent!r} does not exist", "a department's id")
        elif _is_circular(d.id, known.parents):
            refuse("departments", i, "parent", f"department {d.id!r} is its own ancestor", "a tree of departments")
        if d.head is not None and d.head not in known.managers:
            refuse("departments", i, "head", f"user {d.head!r} does not exist", "a user's login")
    for i, u in enumerate(users):
        if u.department is not None and u.department not in known.parents:
            refuse("users", i, "department", f"department {u.department!r} does not exist", "a department's id")
        for position in u.positions or ():
            if position not in known.positions:
                refuse("users", i, "positions", f"position {position!r} does not exist", "a position's id")
        if u.manager is not None and u.manager not in known.managers:
            refuse("users", i, "manager", f"user {u.manager!r} does not exist", "a user's login")
        elif _is_circular(u.login, known.managers):
            refuse("users", i, "manager", f"{u.login!r} manages themselves through others", "a chain that ends")
    return problems


def _is_circular(start: str, up: Mapping[str, str | None]) -> bool:
    seen = {start}
    current = up.get(start)
    while current is not None:
        if current in seen:
            return True
        seen.add(current)
        current = up.get(current)
    return False
