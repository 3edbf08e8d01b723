"""What an audit entry says (who, when, what, on which object, from where) and how it is hashed.

An entry's hash is SHA-256 over its canonical content — a JSON object with sorted keys, no
spaces, UTF-8 — which includes the hash of the entry before it. Editing, deleting or reordering
stored entries therefore breaks the chain at the first entry touched.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from seamflow import redact, store
from seamflow.ids import Json

__all__ = ["GENESIS", "Action", "Actor", "Origin", "canonical", "detail_text", "entry_hash", "entry_json"]

GENESIS = "0" * 64
"""The `prev_hash` of the first entry ever appended."""


class Action(StrEnum):
    """What was done; the `action` of an entry."""

    FLOW_DEPLOYED = "flow.deployed"
    FLOW_PROMOTED = "flow.promoted"
    FLOW_SHADOWED = "flow.shadowed"
    FLOW_ROLLED_BACK = "flow.rolled_back"
    SECRET_SET = "secret.set"  # noqa: S105  # an action name, not a secret
    SECRET_REMOVED = "secret.removed"  # noqa: S105  # an action name, not a secret
    SECRET_KEY_ROTATED = "secret.key_rotated"  # noqa: S105  # an action name, not a secret
    RUN_REPLAYED = "run.replayed"
    APPROVAL_DECIDED = "approval.decided"
    USER_CHANGED = "user.changed"
    USER_REMOVED = "user.removed"
    ROLE_GRANTED = "role.granted"
    ROLE_REVOKED = "role.revoked"
    PASSWORD_SET = "user.password_set"  # noqa: S105  # an action name, not a secret
    DIRECTORY_CHANGED = "directory.changed"
    DIRECTORY_IMPORTED = "directory.imported"
    TOKEN_CREATED = "token.created"  # noqa: S105  # an action name, not a secret
    TOKEN_REVOKED = "token.revoked"  # noqa: S105  # an action name, not a secret
    SIGNED_IN = "session.signed_in"
    SIGN_IN_FAILED = "session.sign_in_failed"
    SIGNED_OUT = "session.signed_out"
    CONNECTION_AUTHORIZED = "connection.authorized"
    AUDIT_PRUNED = "audit.pruned"
    IDENTITY_MERGED = "identity.merged"
    IDENTITY_SPLIT = "identity.split"


@dataclass(frozen=True, slots=True)
class Actor:
    """Who acted: a login (or `@bootstrap`, `@cli`) and by what means; never a secret.

    Attributes:
        id: the user's login, `@bootstrap` (the admin token `init` made) or `@cli:<os user>`.
        via: `session`, `token tok_…`, `bootstrap`, `password` (a sign-in) or `cli`.
    """

    id: str
    via: str


@dataclass(frozen=True, slots=True)
class Origin:
    """Where the action came from: the client's address and user agent (`local` for the CLI)."""

    client: str = "local"
    user_agent: str = ""


def canonical(row: store.AuditRow) -> bytes:
    """The bytes an entry's hash covers: every field but the hash itself, as canonical JSON."""
    content = {
        "seq": row.seq,
        "at_ms": row.at_ms,
        "actor": row.actor,
        "via": row.via,
        "action": row.action,
        "object": row.object,
        "client": row.client,
        "user_agent": row.user_agent,
        "detail": row.detail,
        "prev_hash": row.prev_hash,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def entry_hash(row: store.AuditRow) -> str:
    """SHA-256 (hex) of the entry's canonical content, its previous entry's hash included."""
    return hashlib.sha256(canonical(row)).hexdigest()


def detail_text(detail: dict[str, Json]) -> str:
    """The detail as canonical JSON text, secret values masked before anything is hashed or kept."""
    return json.dumps(redact.mask(detail), sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def entry_json(row: store.AuditRow) -> dict[str, Json]:
    """An entry as the API, the export and the CLI show it (the detail parsed back)."""
    detail: Json = json.loads(row.detail)
    return {
        "seq": row.seq,
        "at": _iso(row.at_ms),
        "at_ms": row.at_ms,
        "actor": row.actor,
        "via": row.via,
        "action": row.action,
        "object": row.object,
        "client": row.client,
        "user_agent": row.user_agent,
        "detail": detail,
        "prev_hash": row.prev_hash,
        "hash": row.hash,
    }


def _iso(at_ms: int) -> str:
    return datetime.fromtimestamp(at_ms / 1000, UTC).isoformat(timespec="milliseconds")
