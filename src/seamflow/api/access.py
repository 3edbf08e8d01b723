"""Who may call which REST route: the one table of route -> scope, and the check every route runs.

A request is someone (`directory.Principal`): the bootstrap admin token `init` made, a personal
API token (`sfp_…`), or a console session cookie. Missing, invalid, expired or revoked credentials
are a 401; a valid principal whose scopes do not include the route's is a 403. A route missing
from `ROUTE_ACCESS` is refused to everyone (and `tests/unit/test_route_access.py` fails).

Routes that act on one flow (`OnFlow`: a flow, a run of it, a task of its approvals) check the
scope on that flow: the principal's global roles plus its grants on the flow or a folder holding
it (`directory.Principal.scopes_on`). List routes (`FlowList`) let in anyone holding the scope on
some flow and answer only what the principal may see (`visible_flows`). A personal API token
limited to some flows may call only those two kinds of route (and the `signed_in` ones).

A request that changes something (not GET/HEAD/OPTIONS) and is signed in by the session cookie
must also carry the header `CSRF_HEADER: 1` (403 `auth.csrf` otherwise): the cookie is
SameSite=Strict, and a page of another site can neither send it nor set a custom header without
a CORS preflight this server never grants. Bearer tokens are not sent by browsers by themselves,
so they need no such header.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from fastapi import Request

from seamflow import directory, engine, errors
from seamflow.ids import RunId

__all__ = [
    "CSRF_HEADER",
    "PUBLIC",
    "ROUTE_ACCESS",
    "SESSION_COOKIE",
    "SIGNED_IN",
    "Access",
    "FlowList",
    "OnFlow",
    "authorize",
    "directory_of",
    "flow_ref",
    "may_read_details",
    "needed_scope",
    "principal_of",
    "visible_flows",
]

PUBLIC: Final = "public"
"""Anyone, without credentials (health checks, signing in)."""
SIGNED_IN: Final = "signed_in"
"""Any valid principal, whatever its scopes (who am I, signing out)."""


@dataclass(frozen=True, slots=True)
class OnFlow:
    """A route acting on one flow, named by the path parameter `by` (a flow id, a run's, a task's)."""

    scope: directory.Scope
    by: Literal["flow_id", "run_id", "task_id"]


@dataclass(frozen=True, slots=True)
class FlowList:
    """A list route: allowed to whoever holds `scope` on some flow; the answer holds only their flows."""

    scope: directory.Scope


Access = directory.Scope | Literal["public", "signed_in"] | OnFlow | FlowList
SESSION_COOKIE = "seamflow_session"
CSRF_HEADER = "X-Seamflow-CSRF"
"""The header a cookie-signed request that changes something must carry (value `1`); the console sends it."""
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

_R, _O, _B, _A = directory.Scope.READ, directory.Scope.OPERATE, directory.Scope.BUILD, directory.Scope.ADMIN
_AP = directory.Scope.APPROVE
ROUTE_ACCESS: dict[tuple[str, str], Access] = {
    ("GET", "/openapi.json"): PUBLIC,
    ("GET", "/docs"): PUBLIC,
    ("GET", "/docs/oauth2-redirect"): PUBLIC,
    ("GET", "/redoc"): PUBLIC,
    ("GET", "/health/live"): PUBLIC,
    ("GET", "/health/ready"): PUBLIC,
    ("GET", "/health"): PUBLIC,
    ("GET", "/metrics"): _R,
    ("GET", "/api/v1/flows"): FlowList(_R),
    ("POST", "/api/v1/flows/reload"): _B,
    ("POST", "/api/v1/flows/test"): _B,
    ("POST", "/api/v1/flows/{flow_id}/shadows"): OnFlow(_B, "flow_id"),
    ("GET", "/api/v1/flows/{flow_id}/shadows"): OnFlow(_R, "flow_id"),
    ("POST", "/api/v1/flows/{flow_id}/shadows/live"): OnFlow(_B, "flow_id"),
    ("GET", "/api/v1/flows/{flow_id}/shadows/live"): OnFlow(_R, "flow_id"),
    ("POST", "/api/v1/flows/{flow_id}/shadows/live/{shadow_id}/stop"): OnFlow(_B, "flow_id"),
    ("POST", "/api/v1/flows/{flow_id}/promotions"): OnFlow(_B, "flow_id"),
    ("GET", "/api/v1/flows/{flow_id}/promotions"): OnFlow(_R, "flow_id"),
    ("POST", "/api/v1/flows/{flow_id}/promotions/{promotion_id}/apply"): OnFlow(_B, "flow_id"),
    ("POST", "/api/v1/flows"): _B,
    ("GET", "/api/v1/flows/palette"): _B,
    ("POST", "/api/v1/flows/preview"): _B,
    ("GET", "/api/v1/flows/{flow_id}"): OnFlow(_R, "flow_id"),
    ("GET", "/api/v1/flows/{flow_id}/source"): OnFlow(_R, "flow_id"),
    ("PUT", "/api/v1/flows/{flow_id}/source"): OnFlow(_B, "flow_id"),
    ("POST", "/api/v1/flows/{flow_id}/runs"): OnFlow(_O, "flow_id"),
    ("GET", "/api/v1/runs"): FlowList(_R),
    ("GET", "/api/v1/runs/{run_id}"): OnFlow(_R, "run_id"),
    ("POST", "/api/v1/runs/{run_id}/replay"): OnFlow(_O, "run_id"),
    ("POST", "/api/v1/signals"): _O,
    ("GET", "/api/v1/dead-letters"): FlowList(_R),
    ("GET", "/api/v1/events"): _R,
    ("GET", "/api/v1/insight/map"): _R,
    ("GET", "/api/v1/insight/conformance"): _R,
    ("GET", "/api/v1/insight/diagnosis"): _R,
    ("POST", "/api/v1/insight/kpis"): _R,
    ("GET", "/api/v1/insight/kpis"): _R,
    ("GET", "/api/v1/insight/object-types"): _R,
    ("GET", "/api/v1/insight/export"): _R,
    ("GET", "/api/v1/workers"): _R,
    ("GET", "/api/v1/feeds"): _R,
    ("GET", "/api/v1/overview"): _R,
    ("GET", "/api/v1/connections"): _R,
    ("POST", "/api/v1/connections/{name}/test"): _B,
    ("POST", "/api/v1/connections/{name}/authorize"): _O,
    ("GET", "/api/v1/connections/oauth/callback"): PUBLIC,  # the state, taken once, binds it to an Authorize press
    ("GET", "/api/v1/syncs"): _R,
    ("GET", "/api/v1/identity/{entity}/members/{unified_id}"): _R,
    ("POST", "/api/v1/identity/{entity}/merge"): _O,
    ("POST", "/api/v1/identity/{entity}/members/{unified_id}/split"): _O,
    ("GET", "/api/v1/syncs/{sync_id}/conflicts"): _R,
    ("POST", "/api/v1/syncs/conflicts/{conflict_id}/resolve"): _O,
    ("POST", "/api/v1/syncs/{sync_id}/check"): _O,
    ("POST", "/api/v1/session"): PUBLIC,
    ("GET", "/api/v1/session"): SIGNED_IN,
    ("GET", "/api/v1/me"): SIGNED_IN,
    ("GET", "/api/v1/session/oidc"): PUBLIC,
    ("GET", "/api/v1/session/oidc/start"): PUBLIC,
    ("GET", "/api/v1/session/oidc/callback"): PUBLIC,  # state, PKCE and the ID token's signature are the check
    ("DELETE", "/api/v1/session"): SIGNED_IN,
    ("GET", "/api/v1/session/tokens"): SIGNED_IN,
    ("POST", "/api/v1/session/tokens"): SIGNED_IN,
    ("DELETE", "/api/v1/session/tokens/{token_id}"): SIGNED_IN,
    ("GET", "/api/v1/directory/users"): _R,
    ("GET", "/api/v1/directory/users/{login}"): _R,
    ("PUT", "/api/v1/directory/users/{login}"): _A,
    ("DELETE", "/api/v1/directory/users/{login}"): _A,
    ("PUT", "/api/v1/directory/users/{login}/password"): _A,
    ("GET", "/api/v1/directory/users/{login}/tokens"): _A,
    ("POST", "/api/v1/directory/users/{login}/tokens"): _A,
    ("DELETE", "/api/v1/directory/tokens/{token_id}"): _A,
    ("GET", "/api/v1/directory/grants"): _A,
    ("POST", "/api/v1/directory/grants"): _A,
    ("DELETE", "/api/v1/directory/grants"): _A,
    ("GET", "/api/v1/directory/departments"): _R,
    ("PUT", "/api/v1/directory/departments/{department_id}"): _A,
    ("DELETE", "/api/v1/directory/departments/{department_id}"): _A,
    ("GET", "/api/v1/tasks"): FlowList(_R),
    ("GET", "/api/v1/tasks/{task_id}"): OnFlow(_R, "task_id"),
    ("POST", "/api/v1/tasks/{task_id}/decision"): OnFlow(_AP, "task_id"),
    ("POST", "/api/v1/tasks/{task_id}/withdraw"): SIGNED_IN,
    ("POST", "/api/v1/tasks/{task_id}/resubmit"): SIGNED_IN,
    ("POST", "/api/v1/tasks/{task_id}/link"): SIGNED_IN,
    ("GET", "/api/v1/delegations"): _R,
    ("PUT", "/api/v1/delegations/{login}"): SIGNED_IN,
    ("DELETE", "/api/v1/delegations/{login}"): SIGNED_IN,
    ("GET", "/approve/t/{token}"): PUBLIC,  # the token is the credential (api/decision_links.py)
    ("POST", "/approve/t/{token}"): PUBLIC,
    ("POST", "/approve/card/feishu"): PUBLIC,  # Feishu's signature and the task's token (api/card_callbacks.py)
    ("GET", "/approve/card/wecom"): PUBLIC,  # WeCom's URL check, signed and encrypted (api/wecom_cards.py)
    ("POST", "/approve/card/wecom"): PUBLIC,  # WeCom's signature + AES and the task's token
    ("GET", "/api/v1/directory/positions"): _R,
    ("PUT", "/api/v1/directory/positions/{position_id}"): _A,
    ("DELETE", "/api/v1/directory/positions/{position_id}"): _A,
    ("GET", "/api/v1/audit"): _A,
    ("POST", "/api/v1/feedback"): SIGNED_IN,
    ("GET", "/api/v1/feedback"): _R,
    ("POST", "/api/v1/feedback/{feedback_id}/close"): _O,
}
"""Every REST route (method, path template) and what it requires; webhooks (`/hooks/…`) are
outside the REST API and checked by their own signature."""

_BOOTSTRAP = directory.Principal("@bootstrap", frozenset(directory.Scope), "bootstrap")
"""The admin token `init` made; `@` cannot start a login, so it is never mistaken for a user."""


def directory_of(eng: engine.Engine) -> directory.Directory:
    """The directory service of the engine's process (made on first use over the engine's store)."""
    found = eng.services.get(directory.Directory)
    if found is None:
        found = directory.Directory(eng.db)
        eng.services.add(found)
    return found


async def authorize(
    request: Request, known_tokens: set[str], eng: engine.Engine, *, template: str | None = None
) -> directory.Principal | None:
    """Check the request against `ROUTE_ACCESS`; returns its principal (None on a public route).

    `template` is the route's path template, for a route answered outside FastAPI's router
    (which otherwise names it); its path parameters are then the scope's `path_params`.

    Raises:
        errors.Unauthorized: no credentials, or invalid, expired or revoked ones (401).
        errors.Forbidden: the principal's scopes lack the route's, or a cookie-signed change lacks
            `CSRF_HEADER` (403).
    """
    if template is None:
        template = getattr(request.scope.get("route"), "path", request.url.path)
    rule = ROUTE_ACCESS.get((request.method, template))
    if rule == PUBLIC:
        return None
    principal = await _principal(request, known_tokens, eng)
    if rule is None:
        raise errors.Forbidden(f"{request.method} {template} is in no access rule; nobody may call it")
    request.state.principal = principal
    await _check(request, template, rule, principal, eng)
    if principal.via == "session" and request.method not in _SAFE_METHODS and request.headers.get(CSRF_HEADER) != "1":
        raise errors.Forbidden(
            f"{request.method} {template} signed in by the session cookie needs the header {CSRF_HEADER}: 1"
            " (protection against cross-site requests); the console sends it",
            code="auth.csrf",
        )
    return principal


def needed_scope(rule: Access) -> directory.Scope | Literal["public", "signed_in"]:
    """The scope a rule of `ROUTE_ACCESS` asks for (on a flow, on some flow, or everywhere)."""
    return rule.scope if isinstance(rule, OnFlow | FlowList) else rule


async def _check(
    request: Request, template: str, rule: Access, principal: directory.Principal, eng: engine.Engine
) -> None:
    scope = needed_scope(rule)
    if scope == SIGNED_IN or (scope != PUBLIC and principal.may(scope)):
        return
    assert scope != PUBLIC  # answered before
    what = f"{request.method} {template} needs the {scope} scope"
    who = f"{principal.login!r} (by {principal.via})"
    if isinstance(rule, FlowList) and principal.may_somewhere(scope):
        return  # the route answers only the flows it may see
    if isinstance(rule, OnFlow):
        flow = await _flow_named(request, rule, eng)
        if flow is None and principal.may_somewhere(scope):
            return  # nothing there: the route answers 404
        if flow is not None and principal.may(scope, flow):
            return
        on = f" on flow {flow.flow_id!r}" if flow is not None else ""
        held = ", ".join(sorted(principal.scopes_on(flow))) if flow is not None else ""
        raise errors.Forbidden(f"{what}{on}; {who} has {held or 'none'} there (global roles and grants)")
    if principal.is_limited:
        raise errors.Forbidden(f"{what} on every flow; {who} is limited to {', '.join(principal.targets)}")
    held = ", ".join(sorted(principal.scopes)) or "none"
    raise errors.Forbidden(f"{what}; {who} has {held}")


async def _flow_named(request: Request, rule: OnFlow, eng: engine.Engine) -> directory.FlowRef | None:
    """The flow a route acts on, from its path parameter; None if the run or task does not exist."""
    key = str(request.path_params.get(rule.by, ""))
    if rule.by == "flow_id":
        return flow_ref(eng, key)
    if rule.by == "run_id":
        try:
            summary, _ = await eng.db.get_run(RunId(key))
        except errors.NotFound:
            return None
        return flow_ref(eng, summary.flow_id)
    task = await eng.db.get_task(key)
    return flow_ref(eng, task.flow_id) if task is not None else None


def flow_ref(eng: engine.Engine, flow_id: str) -> directory.FlowRef:
    """A flow as grants see it: its id and, when it is served from a file, the file's folder under `flows/`."""
    served = eng.catalog.current.get(flow_id)
    return directory_of(eng).flow_ref(flow_id, served.path if served is not None else None)


def principal_of(request: Request) -> directory.Principal:
    """The principal `authorize` found for this request (on a route that is not public)."""
    principal: directory.Principal = request.state.principal
    return principal


def visible_flows(request: Request, eng: engine.Engine, scope: directory.Scope) -> tuple[str, ...] | None:
    """The ids of the served flows on which the request's principal holds `scope`; None: every flow.

    A list route passes it to its query (`store.RunFilter.flow_ids`), so a principal with grants
    on some flows sees those only.
    """
    principal = principal_of(request)
    if principal.may(scope):
        return None
    return tuple(sorted(f for f in eng.catalog.current if principal.may(scope, flow_ref(eng, f))))


async def may_read_details(request: Request, known_tokens: set[str], eng: engine.Engine) -> bool:
    """On a public route (health): True if the request carries valid credentials with the read scope.

    Anonymous callers (load balancers) get the short answer; invalid credentials are not an error here.
    """
    if not request.headers.get("authorization") and not request.cookies.get(SESSION_COOKIE):
        return False
    try:
        principal = await _principal(request, known_tokens, eng)
    except errors.SeamflowError:
        return False
    return principal.may(directory.Scope.READ)


async def _principal(request: Request, known_tokens: set[str], eng: engine.Engine) -> directory.Principal:
    header = request.headers.get("authorization", "")
    people = directory_of(eng)
    if header:
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise errors.Unauthorized("malformed Authorization header; expected Authorization: Bearer <token>")
        if token.startswith(directory.TOKEN_PREFIX):
            principal = await people.principal_of_token(token)
            if principal is not None:
                return principal
        else:
            digest = directory.digest(token)
            if digest in known_tokens or await eng.db.has_api_token(digest):
                known_tokens.add(digest)
                return _BOOTSTRAP
        raise errors.Unauthorized("the API token is not valid")
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        principal = await people.principal_of_session(cookie)
        if principal is None:
            raise errors.Unauthorized("the session expired or was signed out; sign in again", code="auth.expired")
        return principal
    raise errors.Unauthorized(
        "missing credentials; expected the header Authorization: Bearer <token> or a session cookie"
    )
