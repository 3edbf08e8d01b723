"""Signing in for the document's `oauth2` and `openIdConnect` security schemes, with the `http` connector's OAuth2.

The scheme gives the URLs — a flow's `authorizationUrl` and `tokenUrl`, or for openIdConnect the
endpoints of its discovery document — and the scopes; the connection's credentials give the
client (and, for the password flow, the resource owner). The tokens live in the connection's
token cache like an `http` connection's: `seamflow connections authorize` stores them, calls
refresh them before they expire and on a 401, once across the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass

import aiohttp
import yarl

from seamflow import errors
from seamflow.connectors.http.oauth2 import OAuth2Auth, OAuth2SignIn
from seamflow.connectors.http.response import read_answer, sending_failed, timed_out
from seamflow.connectors.openapi.config import Credentials
from seamflow.connectors.tokens import TokenCache
from seamflow.ids import Json

__all__ = ["TOKEN_KINDS", "Place", "choose_grant", "open_sign_in"]

TOKEN_KINDS = ("oauth2", "openIdConnect")
"""Security scheme types whose credentials obtain a token."""
_FLOWS = {"authorization_code": "authorizationCode", "client_credentials": "clientCredentials", "password": "password"}
_IMPLICIT = (
    "the implicit flow is not supported: its token comes back in the browser's address, without a refresh"
    " token or client authentication (OAuth 2.0 Security Best Current Practice, RFC 9700, says not to use it);"
    " expected a scheme with the authorizationCode, clientCredentials or password flow"
)
_DISCOVERY_MAX_BYTES = 256 * 1024


def _flows(scheme: dict[str, Json]) -> dict[str, Json]:
    flows = scheme.get("flows")
    return flows if isinstance(flows, dict) else {}


def choose_grant(scheme: dict[str, Json], given: Credentials) -> tuple[str | None, str | None]:
    """The grant the connection uses for a token scheme, or the reason it cannot sign in: (grant, problem).

    Without `flow:` in the credentials: the password flow when a username is given, else client
    credentials, else the authorization code flow — the first the scheme declares.
    """
    is_oidc = scheme.get("type") == "openIdConnect"
    declared = list(_FLOWS) if is_oidc else [g for g, f in _FLOWS.items() if isinstance(_flows(scheme).get(f), dict)]
    if given.flow == "implicit" or (not declared and "implicit" in _flows(scheme)):
        return None, _IMPLICIT
    if not declared:
        return None, "the scheme declares no flow; expected flows with authorizationCode, clientCredentials or password"
    if given.flow is not None:
        if given.flow not in declared:
            names = ", ".join(_FLOWS[g] for g in declared)
            return None, f"flow {given.flow} is not declared by the scheme; it declares {names}"
        grant: str = given.flow
    elif is_oidc:
        grant = "password" if given.username is not None else "authorization_code"
    else:
        order = ["password"] if given.username is not None else []
        grant = next(g for g in [*order, "client_credentials", "authorization_code", "password"] if g in declared)
    needs = {"client_credentials": ("client_id", "client_secret"), "password": ("client_id", "username", "password")}
    missing = [f for f in needs.get(grant, ("client_id",)) if getattr(given, f) is None]
    if missing:
        return (
            None,
            f"missing {', '.join(missing)} (the {grant} flow needs {', '.join(needs.get(grant, ('client_id',)))})",
        )
    return grant, None


async def open_sign_in(
    scheme: dict[str, Json], given: Credentials, grant: str, scopes: list[str], place: Place
) -> OAuth2SignIn:
    """The sign-in of one token scheme, its URLs taken from the scheme (or its discovery document).

    Raises:
        errors.InvalidInput: `connection.invalid`: the scheme has no token URL, the discovery
            document is refused or lacks an endpoint.
        errors.Transient: the discovery document's URL does not answer now.
    """
    if scheme.get("type") == "openIdConnect":
        authorize_url, token_url = await _discover(scheme, place)
    else:
        flow = _flows(scheme).get(_FLOWS[grant])
        flow = flow if isinstance(flow, dict) else {}
        authorize_url = _text(flow.get("authorizationUrl"))
        token_url = _text(flow.get("tokenUrl"))
    if token_url is None or (grant == "authorization_code" and authorize_url is None):
        raise place.invalid(
            f"the {_FLOWS[grant]} flow has no {'tokenUrl' if token_url is None else 'authorizationUrl'}"
        )
    auth = OAuth2Auth(
        grant=grant,  # type: ignore[arg-type]  # one of _FLOWS' keys, checked by choose_grant
        token_url=str(place.base.join(yarl.URL(token_url))),
        authorize_url=str(place.base.join(yarl.URL(authorize_url))) if authorize_url else None,
        client_id=given.client_id or "",
        client_secret=given.client_secret,
        client_auth=given.client_auth,
        scopes=given.scopes if given.scopes is not None else scopes,
        redirect_port=given.redirect_port,
        username=given.username,
        password=given.password,
        refresh_early_s=given.refresh_early_s,
    )
    return OAuth2SignIn(auth, place.cache_key, place.tokens, place.timeout_s)


@dataclass(frozen=True, slots=True)
class Place:
    """Where a scheme's sign-in works: the connection, the API's base URL, the session and the token cache."""

    connection: str
    scheme: str
    cache_key: str
    """The name its tokens are kept under: the connection's, or `connection:scheme` when it has several."""
    base: yarl.URL
    session: aiohttp.ClientSession
    tokens: TokenCache | None
    timeout_s: float

    def invalid(self, problem: str) -> errors.InvalidInput:
        """`connection.invalid` naming the connection and the scheme."""
        return errors.InvalidInput(
            f"connection {self.connection!r}: auth.{self.scheme}: {problem}", code="connection.invalid"
        )


async def _discover(scheme: dict[str, Json], place: Place) -> tuple[str | None, str | None]:
    """The authorization and token endpoints of an OpenID Connect discovery document (Discovery 1.0 §3)."""
    raw = _text(scheme.get("openIdConnectUrl"))
    if raw is None:
        raise place.invalid("the openIdConnect scheme has no openIdConnectUrl")
    url = place.base.join(yarl.URL(raw))
    where = f"{place.connection}.sign_in"
    try:
        async with place.session.get(url, allow_redirects=True, headers={"Accept": "application/json"}) as response:
            answer = await read_answer(response, None, _DISCOVERY_MAX_BYTES, where)
    except TimeoutError as exc:
        raise timed_out("GET", url, exc, place.timeout_s, where) from exc
    except aiohttp.ClientError as exc:
        raise sending_failed("GET", url, exc, where) from None
    except errors.Permanent as exc:  # 4xx, or not JSON: the configuration is wrong, not the moment
        raise place.invalid(f"the discovery document {url} was refused: {exc.message}") from None
    body = answer.get("body") if isinstance(answer, dict) else None
    token_url = _text(body.get("token_endpoint")) if isinstance(body, dict) else None
    if not isinstance(body, dict) or token_url is None:
        raise place.invalid(f"the discovery document {url} has no token_endpoint; expected OpenID Connect discovery")
    return _text(body.get("authorization_endpoint")), token_url


def _text(value: Json) -> str | None:
    return value if isinstance(value, str) and value else None
