"""Request signing as Chinese open platforms document it: the query parameters sorted and signed with the app secret.

Shop and ERP platforms (Taobao's TOP, 旺店通, 有赞's older API and many more) add a timestamp
and often a nonce, sort every parameter by name, join them (`key` + `value`, or `key=value`
with `&`), wrap the text with the secret (`secret + text + secret`), and send the MD5 (or
HMAC-SHA256 keyed with the secret) as another parameter, usually upper-case hex. `sign:` of an
`http` connection declares these choices; the signature is computed per request, after a token
(`auth.token_endpoint`) was placed, so a token sent as a parameter is signed too.
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

__all__ = ["Signing", "sign_query"]

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

    @field_validator("wrap")
    @classmethod
    def _has_params(cls, value: str) -> str:
        if "{params}" not in value:
            raise ValueError("must contain {params}")
        return value


def sign_query(url: yarl.URL, signing: Signing) -> yarl.URL:
    """`url` with the fixed parameters, the timestamp, the nonce and the signature added."""
    extra = dict(signing.params)
    if signing.timestamp_param is not None:
        extra[signing.timestamp_param] = _timestamp(signing.timestamp_format)
    if signing.nonce_param is not None:
        extra[signing.nonce_param] = secrets.token_hex(8)
    url = url.update_query(extra) if extra else url
    pairs = sorted((k, v) for k, v in url.query.items() if k != signing.param)
    text = signing.separator.join(signing.pair.format(key=k, value=v) for k, v in pairs)
    secret = signing.secret.get_secret_value()
    if signing.algorithm == "md5":
        wrapped = signing.wrap.replace("{secret}", secret).replace("{params}", text)
        digest = hashlib.md5(wrapped.encode(), usedforsecurity=False).hexdigest()
    else:
        message = text if signing.wrap == _WRAP else signing.wrap.replace("{secret}", secret).replace("{params}", text)
        digest = hmac.new(secret.encode(), message.encode(), hashlib.sha256).hexdigest()
    return url.update_query({signing.param: digest.upper() if signing.is_upper else digest})


def _timestamp(form: str) -> str:
    now = clock.now()
    if form == "milliseconds":
        return str(int(now.timestamp() * 1000))
    if form == "datetime":
        return now.astimezone(timezone(timedelta(hours=8))).strftime("%Y-%m-%d %H:%M:%S")
    return str(int(now.timestamp()))
