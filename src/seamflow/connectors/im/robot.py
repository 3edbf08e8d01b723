"""Posting to an IM group robot's webhook: the shared part of the DingTalk, WeCom and Feishu connectors.

A robot is a webhook URL whose token is the credential, sometimes with a signing secret.
Each connection owns one aiohttp session; each call validates the inputs, builds the
platform's JSON body, signs it, posts it and reads the platform's error code.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Mapping
from datetime import timedelta
from typing import ClassVar

import aiohttp
import yarl
from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, field_validator

from seamflow import codec, errors, redact
from seamflow.connectors.base import Action, Connection, parse_config
from seamflow.connectors.http.pinning import GuardedConnector
from seamflow.ids import Json, JsonObject

__all__ = ["RobotConfig", "RobotConnector", "invalid_input"]

log = logging.getLogger(__name__)

_ANSWER_MAX_BYTES = 64 * 1024
"""The robots answer with a short JSON object; a longer answer is not theirs."""
_TOKEN_SEGMENT_MIN = 16
"""A path segment this long is a token (Feishu puts it in the path), not a word like `send`."""


class RobotConfig(BaseModel):
    """The settings of a robot connection: its webhook URL, which holds the access token."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    webhook: SecretStr
    """The robot's full webhook URL, as the group's robot settings show it."""

    @field_validator("webhook")
    @classmethod
    def _absolute(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    def secrets(self) -> list[str]:
        """Every secret value of the config, to mask in messages."""
        return [self.webhook.get_secret_value()]


def invalid_input(problem: str, where: str) -> errors.Permanent:
    """Return the verdict on a step input the platform cannot deliver."""
    return errors.Permanent(f"invalid input: {problem}", where=where)


class RobotConnector(abc.ABC):
    """Posts messages to one IM group robot; a platform subclass builds, signs and judges its JSON."""

    kind: ClassVar[str]
    Config: ClassVar[type[BaseModel]]
    actions: ClassVar[Mapping[str, Action]]
    code_field: ClassVar[str] = "errcode"
    """The answer's error code field; 0 means sent."""
    message_field: ClassVar[str] = "errmsg"
    transient_codes: ClassVar[frozenset[int]] = frozenset()
    """Error codes worth retrying (rate limits, system busy); every other non-zero code is Permanent."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None
        self._name = self.kind
        self._webhook = yarl.URL()
        self._timeout_s = 0.0

    async def open(self, connection: Connection) -> None:
        """Validate the connection's config, mask its secrets and open its session.

        Raises:
            errors.InvalidInput: the config is wrong; the message names the connection and field.
        """
        config = self._validate(connection)
        for secret in config.secrets():
            _remember_secret(secret)
        await self.close()
        self._name = connection.name
        self._webhook = yarl.URL(config.webhook.get_secret_value(), encoded=True)
        self._timeout_s = connection.timeout.total_seconds()
        self._configure(config)
        self._session = aiohttp.ClientSession(
            connector=GuardedConnector(connection.outbound, connection.name),
            timeout=aiohttp.ClientTimeout(total=self._timeout_s),
            headers={"User-Agent": "seamflow"},
            cookie_jar=aiohttp.DummyCookieJar(),
            trust_env=False,
        )

    async def close(self) -> None:
        """Close the connection's session."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def call(self, action: str, params: Json, *, idempotency_key: str) -> Json:
        """Post one message and return the platform's answer.

        The robot APIs take no idempotency key, so `idempotency_key` is not sent: a retry
        after a timeout may post the message twice. The engine journals a completed send,
        so a send that was answered is never repeated.

        Raises:
            errors.Transient: timeout, connection failure, HTTP 429 or 5xx, or a rate-limit code.
            errors.Permanent: bad inputs, a wrong signature or webhook, any other error code.
        """
        where = f"{self._name}.{action}"
        spec = self.actions.get(action)
        if spec is None:
            raise errors.Permanent(
                f"unknown action {errors.redact(action)}; expected one of {', '.join(self.actions)}", where=where
            )
        try:
            inputs = spec.input.model_validate(params)
        except ValidationError as exc:
            raise invalid_input(_problems(exc, "with"), where) from None
        if self._session is None:
            raise errors.SeamflowError(f"{where}: connection not open", code="connector.closed")
        body = self.body(action, inputs, where)
        url = self.sign(self._webhook, body)
        log.debug("posting a %s message to the %s robot of %s", action, self.kind, self._name)
        return await self._post(self._session, url, body, where)

    def _validate(self, connection: Connection) -> RobotConfig:
        config = parse_config(self.Config, connection)
        assert isinstance(config, RobotConfig)
        return config

    def _configure(self, config: RobotConfig) -> None:
        """Keep what signing needs from the validated config (the platform's signing secret)."""
        return None  # a platform that does not sign (WeCom) keeps nothing

    @abc.abstractmethod
    def body(self, action: str, inputs: BaseModel, where: str) -> JsonObject:
        """Return the platform's JSON body for `action` (each platform has its own format)."""

    def sign(self, url: yarl.URL, body: JsonObject) -> yarl.URL:
        """Sign the request: return the URL to post to, and add signature fields to `body` if needed."""
        return url

    async def _post(self, session: aiohttp.ClientSession, url: yarl.URL, body: JsonObject, where: str) -> Json:
        host = url.host or "the robot"
        failure: errors.Transient | None = None
        try:
            async with session.post(
                url,
                data=codec.dumps(body),
                headers={"Content-Type": "application/json; charset=utf-8"},
                allow_redirects=False,
            ) as response:
                status = response.status
                retry_after = _retry_after(response.headers.get("Retry-After"))
                data = await response.content.read(_ANSWER_MAX_BYTES)
        except TimeoutError:
            failure = errors.Transient(f"no answer from {host} within {self._timeout_s:g}s", where=where)
        except aiohttp.ClientError as exc:
            detail = errors.redact(str(exc), limit=200)
            failure = errors.Transient(f"sending to {host} failed: {type(exc).__name__}: {detail}", where=where)
        if failure is not None:
            # Raised outside the except block: aiohttp's errors may carry the request's URL, which
            # holds the token, and must not ride along as __cause__ or __context__.
            raise failure
        return self._verdict(status, data, retry_after, where)

    def _verdict(self, status: int, data: bytes, retry_after: timedelta | None, where: str) -> Json:
        try:
            answer = codec.parse_untrusted(data)
        except errors.PayloadInvalid:
            answer = None
        code: Json = None
        message: Json = None
        if isinstance(answer, dict):
            code = answer.get(self.code_field, answer.get("StatusCode"))
            message = answer.get(self.message_field, answer.get("StatusMessage"))
        said = f" ({self.code_field} {code}: {errors.redact(message, limit=200)})" if code not in (None, 0) else ""
        if status == 429 or status >= 500:
            raise errors.Transient(f"HTTP {status}{said}", where=where, retry_after=retry_after)
        if isinstance(code, int) and code != 0:
            failure = errors.Transient if code in self.transient_codes else errors.Permanent
            raise failure(
                f"the {self.kind} robot refused the message: {self.code_field} {code}, "
                f"{errors.redact(message, limit=200)}",
                where=where,
            )
        if status >= 400:
            raise errors.Permanent(f"HTTP {status}", where=where)
        if code != 0:
            raise errors.Permanent(
                f"HTTP {status} without a {self.code_field}; the webhook may not be a {self.kind} robot", where=where
            )
        assert isinstance(answer, dict)
        return answer


def _problems(exc: ValidationError, root: str) -> str:
    """Name each bad field and what is wrong, without the input values (they may be secret)."""
    return "; ".join(
        f"{'.'.join([root, *map(str, e['loc'])])}: {e['msg']}"
        for e in exc.errors(include_url=False, include_input=False)
    )


def _retry_after(value: str | None) -> timedelta | None:
    if value is None or not value.strip().isdigit():
        return None
    return timedelta(seconds=int(value.strip()))


def _remember_secret(value: str) -> None:
    """Mask a secret, and for a webhook URL its token (a query value or a long path segment), in messages."""
    redact.register(value)
    if not value.startswith(("http://", "https://")):
        redact.register(yarl.URL("http://x/").with_query({"k": value}).raw_query_string[2:])
        return
    url = yarl.URL(value)
    for token in url.query.values():
        _remember_secret(token)
    for segment in url.parts:
        if len(segment) >= _TOKEN_SEGMENT_MIN:
            _remember_secret(segment)
