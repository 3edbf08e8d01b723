"""Optional sign-in with the company's identity provider (OpenID Connect, authorization code flow with PKCE).

The project's `oidc.yaml` names the provider (`issuer`), the client and its secret (a secret
reference, `{{ secrets.oidc_client_secret }}`), how a signed-in person is matched to a directory
user (by e-mail, or a claim equal to the login) and, optionally, which groups give which roles.
The discovery document and the JWKS are read from the issuer; the ID token's signature is checked
against the JWKS (joserfc), and its issuer, audience, expiry (within `clock_skew`) and nonce; the
request's `state`, nonce and PKCE verifier are kept in the store and taken once. See
docs/howto/directory.md.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from seamflow import clock, codec, errors, flows, redact, store

if TYPE_CHECKING:  # joserfc (and its crypto) is imported on the first sign-in, not at every start
    from joserfc.jwk import KeySet
from seamflow.directory.model import Role
from seamflow.directory.service import Directory, IssuedSession
from seamflow.errors import Problem

__all__ = ["OidcSettings", "OidcSignIn", "read_oidc_settings"]

_SECRET_REF = re.compile(r"^\{\{\s*secrets\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")
_REQUEST_TTL = timedelta(minutes=10)
_TIMEOUT_S = 10.0


class _OidcFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=60, description="what the sign-in button says: Sign in with <name>")
    issuer: str = Field(pattern=r"^https?://[^\s]+$", description="the provider's issuer URL")
    client_id: str = Field(min_length=1, max_length=200)
    client_secret: str = Field(pattern=_SECRET_REF.pattern, description="a secret reference: {{ secrets.<name> }}")
    redirect_url: str | None = Field(None, pattern=r"^https?://[^\s]+/api/v1/session/oidc/callback$")
    match: Literal["email", "login"] = "email"
    login_claim: str = Field("preferred_username", min_length=1, max_length=100)
    groups_claim: str | None = Field(None, min_length=1, max_length=100)
    group_roles: dict[str, Role] = Field(default_factory=dict)
    clock_skew_s: int = Field(60, ge=0, le=600)
    scopes: list[str] = Field(default_factory=lambda: ["openid", "email", "profile"])


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """How sign-in with the identity provider works (from `oidc.yaml`)."""

    name: str
    issuer: str
    client_id: str
    client_secret: str = field(repr=False)
    redirect_url: str | None = None
    """The callback URL registered at the provider; None: derived from the request."""
    match: Literal["email", "login"] = "email"
    """`email`: the `email` claim equals a user's e-mail; `login`: `login_claim` equals a user's login."""
    login_claim: str = "preferred_username"
    groups_claim: str | None = None
    group_roles: Mapping[str, Role] = field(default_factory=dict)
    """A group named in `groups_claim` → the global role it gives (the user's roles are replaced at sign-in)."""
    clock_skew: timedelta = timedelta(seconds=60)
    scopes: tuple[str, ...] = ("openid", "email", "profile")


def read_oidc_settings(path: Path, secrets_by_name: Mapping[str, str]) -> OidcSettings:
    """Read `oidc.yaml`; the client secret is looked up by its reference.

    Raises:
        errors.InvalidInput: `oidc.invalid` — every problem at file:line:column (an unknown secret too).
    """
    try:
        data, source_map = flows.load.parse_yaml(flows.load.read_source(path), str(path))
        found = _OidcFile.model_validate(data)
    except errors.FlowInvalid as exc:
        raise _invalid(exc.problems) from None
    except ValidationError as exc:
        problems = [_problem(e, source_map) for e in exc.errors(include_url=False)]
        raise _invalid(problems) from None
    reference = _SECRET_REF.match(found.client_secret)
    assert reference is not None  # the pattern was checked
    secret = secrets_by_name.get(reference.group(1))
    if secret is None:
        where = source_map.locate(("client_secret",))
        problem = f"reads secret {reference.group(1)!r}, which is not set"
        raise _invalid([Problem(where, problem, f"`seamflow secrets set {reference.group(1)}`")])
    redact.register(secret)
    return OidcSettings(
        name=found.name,
        issuer=found.issuer.rstrip("/"),
        client_id=found.client_id,
        client_secret=secret,
        redirect_url=found.redirect_url,
        match=found.match,
        login_claim=found.login_claim,
        groups_claim=found.groups_claim,
        group_roles=dict(found.group_roles),
        clock_skew=timedelta(seconds=found.clock_skew_s),
        scopes=tuple(found.scopes),
    )


class OidcSignIn:
    """The relying party: builds authorization requests and turns a callback into verified claims.

    Args:
        settings: the provider and client.
        db: where requests in progress are kept (any process of a serve group may finish one).
    """

    def __init__(self, settings: OidcSettings, db: store.DirectoryStore) -> None:
        self.settings = settings
        self._db = db
        self._discovery: dict[str, Any] | None = None
        self._keys: KeySet | None = None

    async def start(self, redirect_uri: str) -> str:
        """A new authorization request (state, nonce, PKCE S256); returns the provider's URL to send the browser to."""
        endpoint = str((await self._discovered())["authorization_endpoint"])
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
        request = store.SignInRequest(secrets.token_urlsafe(24), secrets.token_urlsafe(24), verifier, _in(_REQUEST_TTL))
        await self._db.save_sign_in_request(request, clock.now())
        query = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": redirect_uri,
            "scope": " ".join(self.settings.scopes),
            "state": request.state,
            "nonce": request.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{urlencode(query)}"

    async def finish(self, state: str, code: str, redirect_uri: str) -> dict[str, Any]:
        """Redeem the code of the request `state` (once) and return the ID token's verified claims.

        Raises:
            errors.Unauthorized: `auth.oidc_state` (unknown, used or expired state), `auth.oidc_failed`
                (the provider refused the code: used twice, wrong verifier) or `auth.oidc_token` (the ID
                token's signature, issuer, audience, expiry or nonce is wrong).
        """
        request = await self._db.take_sign_in_request(state, clock.now())
        if request is None:
            raise errors.Unauthorized(
                "this sign-in is unknown, used already or expired; start again", code="auth.oidc_state"
            )
        tokens = await self._redeem(code, request.verifier, redirect_uri)
        id_token = tokens.get("id_token")
        if not isinstance(id_token, str):
            raise errors.Unauthorized("the provider answered no id_token", code="auth.oidc_failed")
        return await self._verified(id_token, request.nonce)

    async def session(self, people: Directory, claims: Mapping[str, Any]) -> tuple[str, IssuedSession, list[str]]:
        """The directory user the claims name, their roles from groups (when mapped), and a console session.

        Returns:
            The login, the session, and the roles the sign-in added (for the audit trail).

        Raises:
            errors.Unauthorized: `auth.oidc_no_user` — no active directory user matches the claims.
        """
        s = self.settings
        key = claims.get("email") if s.match == "email" else claims.get(s.login_claim)
        users = await people.db.list_users()
        if s.match == "email":
            found = [u for u in users if isinstance(key, str) and (u.email or "").lower() == key.lower()]
        else:
            found = [u for u in users if u.login == key]
        if len(found) != 1 or not found[0].is_active:
            named = "email" if s.match == "email" else s.login_claim
            raise errors.Unauthorized(
                f"no active directory user matches the provider's {named} {errors.redact(key)};"
                " expected an administrator to add the user (seamflow users import)",
                code="auth.oidc_no_user",
            )
        user = found[0]
        added: list[str] = []
        if s.groups_claim and s.group_roles:
            groups = claims.get(s.groups_claim)
            named_groups = groups if isinstance(groups, list) else []
            roles = sorted({str(s.group_roles[g]) for g in named_groups if g in s.group_roles})
            added = sorted(set(roles) - set(user.roles or ()))
            if roles != sorted(user.roles or ()):  # everything else of the user stays as it is
                changed = dataclasses.replace(user, roles=tuple(roles), positions=None)
                await people.db.save_directory_entries(store.DirectoryEntries(users=[changed]))
        return user.login, await people.start_session(user.login), added

    async def _redeem(self, code: str, verifier: str, redirect_uri: str) -> dict[str, Any]:
        endpoint = str((await self._discovered())["token_endpoint"])
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        }
        auth = (self.settings.client_id, self.settings.client_secret)
        try:
            async with httpx.AsyncClient(timeout=_TIMEOUT_S) as client:
                answer = await client.post(endpoint, data=form, auth=auth, headers={"Accept": "application/json"})
        except httpx.HTTPError as exc:
            raise errors.Unauthorized(
                f"the provider's token endpoint failed: {type(exc).__name__}", code="auth.oidc_failed"
            ) from None
        body = _json_object(answer)
        if answer.status_code != 200:
            said = errors.redact(body.get("error_description") or body.get("error") or answer.status_code)
            raise errors.Unauthorized(f"the provider refused the sign-in: {said}", code="auth.oidc_failed")
        return body

    async def _verified(self, id_token: str, nonce: str) -> dict[str, Any]:
        from joserfc import jwt
        from joserfc.errors import JoseError

        s = self.settings
        registry = jwt.JWTClaimsRegistry(
            now=lambda: int(clock.now().timestamp()),
            leeway=int(s.clock_skew.total_seconds()),
            iss={"essential": True, "value": s.issuer},
            aud={"essential": True, "value": s.client_id},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
            nonce={"essential": True, "value": nonce},
        )
        try:
            token = jwt.decode(id_token, await self._key_set(id_token), algorithms=["RS256", "ES256", "PS256"])
            registry.validate(token.claims)
        except JoseError as exc:
            what = f"{exc.error}: {exc.description}" if exc.description else exc.error
            raise errors.Unauthorized(f"the ID token is not valid ({what})", code="auth.oidc_token") from None
        claims: dict[str, Any] = dict(token.claims)
        return claims

    async def _discovered(self) -> dict[str, Any]:
        if self._discovery is None:
            url = f"{self.settings.issuer}/.well-known/openid-configuration"
            document = await _get_json(url)
            if document.get("issuer") != self.settings.issuer:
                raise errors.Unauthorized(
                    f"the discovery document names issuer {errors.redact(document.get('issuer'))};"
                    f" expected {self.settings.issuer}",
                    code="auth.oidc_failed",
                )
            self._discovery = document
        return self._discovery

    async def _key_set(self, id_token: str) -> KeySet:
        """The provider's keys; read again once when the token names a key id not among them (key rotation)."""
        from joserfc.errors import JoseError
        from joserfc.jwk import KeySet

        kid = _header_kid(id_token)
        if self._keys is None or (kid is not None and all(k.kid != kid for k in self._keys.keys)):
            url = str((await self._discovered())["jwks_uri"])
            try:
                self._keys = KeySet.import_key_set(await _get_json(url))  # type: ignore[arg-type]  # checked by joserfc
            except (JoseError, ValueError, KeyError) as exc:
                raise errors.Unauthorized(f"the provider's JWKS is not valid: {exc}", code="auth.oidc_failed") from None
        return self._keys


def _header_kid(id_token: str) -> str | None:
    try:
        header = codec.loads(base64.urlsafe_b64decode(id_token.split(".")[0] + "=="))
    except ValueError:
        return None
    kid = header.get("kid") if isinstance(header, dict) else None
    return kid if isinstance(kid, str) else None


async def _get_json(url: str) -> dict[str, Any]:
    try:
        async with httpx.AsyncClient(timeout=_TIMEOUT_S) as client:
            answer = await client.get(url, headers={"Accept": "application/json"})
    except httpx.HTTPError as exc:
        raise errors.Unauthorized(f"cannot read {url}: {type(exc).__name__}", code="auth.oidc_failed") from None
    if answer.status_code != 200:
        raise errors.Unauthorized(f"{url} answered {answer.status_code}", code="auth.oidc_failed")
    return _json_object(answer)


def _json_object(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {}


def _in(delta: timedelta) -> datetime:
    return clock.now() + delta


def _problem(detail: Any, source_map: flows.load.SourceMap) -> Problem:
    loc = tuple(detail.get("loc", ()))
    kind = str(detail.get("type", ""))
    if kind == "missing":
        return Problem(source_map.locate(()), f"{loc[-1]!r} is missing", _expected(detail))
    if kind == "extra_forbidden":
        fields = ", ".join(_OidcFile.model_fields)
        return Problem(source_map.locate(loc, at_key=True), f"unknown field {loc[-1]!r}", f"one of {fields}")
    got = f"got {errors.redact(detail.get('input'))}: " if loc and loc[0] != "client_secret" else ""
    return Problem(source_map.locate(loc), f"{got}{detail.get('msg', 'invalid')}", _expected(detail))


def _expected(detail: Any) -> str:
    described = _OidcFile.model_fields.get(str(detail["loc"][0])) if detail.get("loc") else None
    if described is not None and described.description:
        return described.description
    return "see docs/howto/directory.md (OIDC sign-in)"


def _invalid(problems: list[Problem]) -> errors.InvalidInput:
    failure = errors.InvalidInput("\n".join(map(str, problems)), code="oidc.invalid")
    failure.problems = list(problems)
    return failure
