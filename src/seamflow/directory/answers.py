"""How the API and the CLI show the directory's rows: users, personal API tokens (never their
secret) and grants, as JSON."""

from __future__ import annotations

import dataclasses
from typing import Any

from seamflow import store
from seamflow.ids import Json

__all__ = ["grant_json", "token_json", "user_json"]


def user_json(user: store.StoredUser) -> dict[str, Json]:
    """A user as the API and CLI show it (never the password or its hash)."""
    return {
        **{k: v for k, v in dataclasses.asdict(user).items() if k not in ("roles", "positions", "im_ids")},
        "im_ids": dict(user.im_ids),
        "roles": list(user.roles or ()),
        "positions": list(user.positions or ()),
    }


def token_json(token: store.StoredToken) -> dict[str, Json]:
    """A personal API token's description (never its secret)."""
    out: dict[str, Any] = dataclasses.asdict(token)
    out["scopes"] = list(token.scopes)
    out["targets"] = list(token.targets)
    for key in ("created", "expires", "last_used", "revoked"):
        out[key] = out[key].isoformat() if out[key] is not None else None
    return out


def grant_json(grant: store.StoredGrant) -> dict[str, Json]:
    """A grant as the API and CLI show it."""
    return {
        "subject": grant.subject,
        "role": grant.role,
        "target": grant.target,
        "created": grant.created.isoformat(),
        "created_by": grant.created_by,
    }
