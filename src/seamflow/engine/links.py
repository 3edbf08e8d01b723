"""Decision links: a task's signed, single-use, expiring token in a URL, so an approver decides without signing in.

A token names the task and its assignee and when it expires, sealed with the project's secret
key (a Fernet token: AES-128-CBC with an HMAC-SHA256 over it), so a forged or altered token is
refused and nobody learns what it names. It is single-use because the task is: once decided (by
this link, the inbox or another approver of the level) the task is no longer pending, and the
link answers 409 `approval.already_decided`. A task handed to a delegate since the link was sent
answers 403 `approval.not_assignee`: the token names the person it was sent to.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cryptography.fernet import InvalidToken

from seamflow import clock, codec, errors, store
from seamflow.engine.secrets import SecretKey

__all__ = ["DecisionLinks", "LinkExpired", "LinkGrant"]

DEFAULT_LINK_TTL = timedelta(days=7)
"""How long a link lasts when its task has no due date."""
_PATH = "/approve/t/"


class LinkExpired(errors.SeamflowError):
    """A decision link past its expiry: 410, ask for a new one."""

    code = "approval.link_expired"
    http_status = 410


@dataclass(frozen=True, slots=True)
class LinkGrant:
    """What a valid token allows: `assignee` may decide `task_id` until `expires`."""

    task_id: str
    assignee: str
    expires: datetime


class DecisionLinks:
    """Issues and checks decision tokens with the project's secret key.

    Args:
        key: reads the project's secret key (`engine.secrets.read_key`), called once when first needed.
        base_url: the server's public address for links (`SEAMFLOW_PUBLIC_URL`); None: the
            caller gives one (the API uses the request's).
    """

    def __init__(self, key: Callable[[], SecretKey], base_url: str | None = None) -> None:
        self._read_key = key
        self._key: SecretKey | None = None
        self.base_url = None if base_url is None else base_url.rstrip("/")

    @staticmethod
    def grant_for(task: store.StoredTask) -> LinkGrant:
        """A link for a task's assignee, until the task is due (or for `DEFAULT_LINK_TTL`)."""
        return LinkGrant(task.id, task.assignee, task.due or clock.now() + DEFAULT_LINK_TTL)

    def issue(self, grant: LinkGrant) -> str:
        """A token for `grant` (url-safe; it goes in a path)."""
        payload = codec.dumps({"t": grant.task_id, "a": grant.assignee, "e": int(grant.expires.timestamp())})
        sealed = self._cipher().cipher.encrypt_at_time(payload, int(clock.now().timestamp()))
        return sealed.decode("ascii").rstrip("=")

    def url(self, grant: LinkGrant, base_url: str | None = None) -> str:
        """The decision link for `grant`: `<base>/approve/t/<token>`."""
        return self.url_of(self.issue(grant), base_url)

    def url_of(self, token: str, base_url: str | None = None) -> str:
        """The decision link that carries `token`."""
        base = (base_url or self.base_url or "").rstrip("/")
        return f"{base}{_PATH}{token}"

    def check(self, token: str) -> LinkGrant:
        """The grant a token carries.

        Raises:
            errors.Forbidden: the token is not one this project issued, or was altered (`approval.link_invalid`).
            LinkExpired: the token's time is over (410).
        """
        try:
            padded = token + "=" * (-len(token) % 4)
            base64.urlsafe_b64decode(padded.encode("ascii"))  # refuse non-base64 before decrypting
            payload = codec.loads(self._cipher().cipher.decrypt(padded.encode("ascii")))
            if not isinstance(payload, dict):
                raise ValueError("not an object")
            expires = payload["e"]
            if not isinstance(expires, int):
                raise TypeError("e is not an integer")
            grant = LinkGrant(str(payload["t"]), str(payload["a"]), datetime.fromtimestamp(expires, UTC))
        except (InvalidToken, ValueError, TypeError, KeyError, UnicodeEncodeError):
            raise errors.Forbidden(
                "this decision link is not valid (altered, or not issued by this server); expected a link from a"
                " Seamflow notification",
                code="approval.link_invalid",
            ) from None
        if clock.now() >= grant.expires:
            raise LinkExpired(
                f"this decision link expired at {grant.expires.isoformat()}; decide in the inbox"
                f" (`seamflow tasks decide {grant.task_id}`) or ask for a new link"
            )
        return grant

    def _cipher(self) -> SecretKey:
        if self._key is None:
            self._key = self._read_key()
        return self._key
