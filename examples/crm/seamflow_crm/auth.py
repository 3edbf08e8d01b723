"""Bearer-token authentication: every API route but /healthz and the OpenAPI document needs the token."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from seamflow_crm.problems import Unauthorized

__all__ = ["require_token"]

_bearer = HTTPBearer(auto_error=False, description="The CRM's API token (CRM_API_TOKEN or --token)")


def require_token(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]
) -> None:
    """FastAPI dependency: refuse the request unless it carries `Authorization: Bearer <the token>`.

    Raises:
        Unauthorized: no token, or another one.
    """
    expected: str = request.app.state.settings.api_token
    if credentials is None:
        raise Unauthorized("send the API token as `Authorization: Bearer <token>`")
    if not secrets.compare_digest(credentials.credentials.encode(), expected.encode()):
        raise Unauthorized("the bearer token is not this CRM's API token")
