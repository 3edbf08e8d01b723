"""Every REST route is in the one access table (`api.access.ROUTE_ACCESS`), and runs its check.

A route added without a line in the table fails here (and is refused to everyone at run time);
a line whose route is gone fails too, so the table stays the truth about who may call what.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, cast

from fastapi.routing import APIRoute
from starlette.routing import BaseRoute, Route

from seamflow import api
from seamflow.api import access
from seamflow.api.dependencies import require_token


def _walk(routes: Sequence[BaseRoute], dependencies: tuple[Any, ...]) -> Iterator[tuple[Route, tuple[Any, ...]]]:
    """Every route with the dependencies it runs, through included routers."""
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI includes routers lazily
        if included is not None:
            yield from _walk(included.routes, (*dependencies, *included.dependencies))
        elif isinstance(route, APIRoute):
            yield route, (*dependencies, *route.dependencies)
        elif isinstance(route, Route):
            yield route, dependencies


def _routes() -> dict[tuple[str, str], tuple[Any, ...]]:
    app = api.create_app(cast(Any, None), context={}, manage_engine=False)
    found = {}
    for route, dependencies in _walk(app.api.router.routes, tuple(app.api.router.dependencies)):
        for method in route.methods or ():
            if method != "HEAD":  # answered by the GET route of the same path
                found[(method, route.path)] = dependencies
    assert len(found) > 20, f"the walk found too few routes: {sorted(found)}"
    return found


def _runs_the_check(dependencies: tuple[Any, ...]) -> bool:
    return any(getattr(dep, "dependency", None) is require_token for dep in dependencies)


def test_every_route_of_the_app_is_in_the_access_table() -> None:
    missing = sorted(set(_routes()) - set(access.ROUTE_ACCESS))
    assert not missing, f"add these routes to api/access.py ROUTE_ACCESS: {missing}"


def test_every_line_of_the_access_table_is_a_route() -> None:
    stale = sorted(set(access.ROUTE_ACCESS) - set(_routes()))
    assert not stale, f"these lines of ROUTE_ACCESS name no route: {stale}"


def test_every_route_that_needs_credentials_runs_the_check() -> None:
    unchecked = [
        key
        for key, dependencies in _routes().items()
        if access.ROUTE_ACCESS.get(key) != access.PUBLIC and not _runs_the_check(dependencies)
    ]
    assert not unchecked, f"these routes need credentials but do not depend on require_token: {unchecked}"
