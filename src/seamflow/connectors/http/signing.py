"""Request signing as Chinese open platforms document it: the query parameters sorted and signed with the app secret.

Shop and ERP platforms (Taobao's TOP, 旺店通, 有赞's older API and many more) add a timestamp
and often a nonce, sort every parameter by name, join them (`key` + `value`, or `key=value`
with `&`), append the raw body when the request has one and the platform signs it (TOP does
for a JSON body), wrap the text with the secret (`secret + text + secret`), and send the MD5
(or HMAC-SHA256 keyed with the secret) as another parameter, usually upper-case hex. Some send
the timestamp, nonce and signature as headers instead (`place: header`); they are signed as
parameters all the same. `sign:` of an `http` connection declares these choices; the signature
is computed per request, after a token (`auth.token_endpoint`) was placed, so a token sent as a
parameter is signed too.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta, timezone
from typing import Literal

import yarl
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from seamflow import clock

__all__ = ["Signing", "sign_request"]

_STRICT = ConfigDict(extra="forbid", frozen=True)
_WRAP = "{secret}{params}{secret}"


class Signing(BaseModel):
    """`sign:` of an `http` connection; see the module docstring."""

    model_config = _STRICT
    secret: SecretStr
    algorithm: Literal["md5", "hmac_sha256"] = "md5"
    param: str = "sign"
    """The query parameter that carries the signature."""
    params: dict[str, str] = Field(default_factory=dict)
    """Fixed parameters added to every call and signed, e.g. `{app_key: …, sign_method: md5, v: "2.0"}`."""
    timestamp_param: str | None = None
    timestamp_format: Literal["seconds", "milliseconds", "datetime"] = "seconds"
    """`datetime`: `2026-12-07 09:30:00` in China Standard Time (UTC+8), as TOP wants it."""
    nonce_param: str | None = None
    pair: str = "{key}{value}"
    """How one parameter is written: `{key}{value}` (TOP) or `{key}={value}`."""
    separator: str = ""
    """Between the written parameters, e.g. `&`."""
    wrap: str = _WRAP
    """The signed text (MD5); HMAC-SHA256 signs `{params}` keyed with the secret unless this says otherwise."""
    is_upper: bool = Field(True, alias="upper")
    is_body_signed: bool = Field(False, alias="body")
    """Append the raw request body (as sent, UTF-8) after the parameters before wrapping."""
    place: Literal["query", "header"] = "query"
    """Where the timestamp, nonce and signature travel: query parameters, or headers of the same names
    (`X-Ca-Timestamp`, …). The fixed `params` always go in the query."""

    @field_validator("wrap")
    @classmethod
    def _has_params(cls, value: str) -> str:
        if "{params}" not in value:
            raise ValueError("must contain {params}")
        return value


def sign_request(url: yarl.URL, body: bytes | None, signing: Signing) -> tuple[yarl.URL, dict[str, str]]:
    """`url` with the fixed parameters added, and the timestamp, nonce and signature in it or in headers.

    Returns:
        The URL to send and the headers to add (none unless `place` is `header`).
    """
    url = url.update_query(signing.params) if signing.params else url
    extra: dict[str, str] = {}
    if signing.timestamp_param is not None:
        extra[signing.timestamp_param] = _timestamp(signing.timestamp_format)
    if signing.nonce_param is not None:
        extra[signing.nonce_param] = secrets.token_hex(8)
    signed = {**{k: v for k, v in url.query.items() if k != signing.param}, **extra}
    text = signing.separator.join(signing.pair.format(key=k, value=v) for k, v in sorted(signed.items()))
    if signing.is_body_signed and body:
        text += body.decode("utf-8", errors="replace")
    extra[signing.param] = _signature(text, signing)
    if signing.place == "header":
        return url, extra
    return url.update_query(extra), {}


def _signature(text: str, signing: Signing) -> str:
    secret = signing.secret.get_secret_value()
    if signing.algorithm == "md5":
        wrapped = signing.wrap.replace("{secret}", secret).replace("{params}", text)
        digest = hashlib.md5(wrapped.encode(), usedforsecurity=False).hexdigest()
    else:
        message = text if signing.wrap == _WRAP else signing.wrap.replace("{secret}", secret).replace("{params}", text)
        digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return digest.upper() if signing.is_upper else digest


def _timestamp(form: str) -> str:
    now = clock.now()
    if form == "milliseconds":
        return str(int(now.timestamp() * 1000))
    if form == "datetime":
        return now.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
    return str(int(now.timestamp()))
