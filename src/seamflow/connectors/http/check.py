"""How an `http` connection proves it works (`seamflow connections test`): one GET to `check_path` or `base_url`.

Each way it can fail gets its own words: the name does not resolve, the connection is
refused, the TLS certificate is not trusted, the credentials are refused (401/403).
"""

from __future__ import annotations

import aiohttp
import yarl

from seamflow import errors

__all__ = ["check_target", "probe"]


def check_target(base_url: str | None, check_path: str | None, where: str) -> tuple[yarl.URL, bool]:
    """The URL to GET and whether it was configured as `check_path` (then any 4xx is a failure).

    Raises:
        errors.Permanent: neither `base_url` nor an absolute `check_path` is configured.
    """
    if check_path is not None and check_path.startswith(("http://", "https://")):
        return yarl.URL(check_path), True
    if base_url is None:
        raise errors.Permanent(
            "nothing to check: the connection has no base_url; expected base_url or an absolute check_path",
            where=where,
        )
    base = base_url if base_url.endswith("/") else base_url + "/"
    if check_path is None:
        return yarl.URL(base_url), False
    return yarl.URL(base + check_path.lstrip("/")), True


async def probe(
    session: aiohttp.ClientSession, url: yarl.URL, headers: dict[str, str], is_configured: bool, where: str
) -> str:
    """GET `url` with the connection's credentials; return a one-line answer or raise what is wrong.

    Raises:
        errors.Permanent: DNS, refused, TLS, 401/403, or another 4xx on a configured `check_path`.
        errors.Transient: a timeout or a 5xx answer.
    """
    shown = _shown(url)
    try:
        async with session.get(url, headers=headers, allow_redirects=False) as response:
            status = response.status
    except TimeoutError:
        raise errors.Transient(f"{shown} did not answer in time", where=where) from None
    except aiohttp.ClientConnectorCertificateError as exc:
        raise errors.Permanent(
            f"the TLS certificate of {url.host} is not trusted ({_reason(exc.certificate_error)});"
            " expected a certificate from a trusted CA for this host, or verify_tls: false for a test server",
            where=where,
        ) from None
    except aiohttp.ClientConnectorDNSError:
        raise errors.Permanent(f"the host name {url.host!r} does not resolve (DNS)", where=where) from None
    except aiohttp.ClientSSLError as exc:
        raise errors.Permanent(f"the TLS handshake with {url.host} failed ({_reason(exc)})", where=where) from None
    except aiohttp.ClientConnectorError as exc:
        if isinstance(exc.os_error, ConnectionRefusedError):
            raise errors.Permanent(
                f"the connection to {url.host}:{url.port} was refused (is the system running on that port?)",
                where=where,
            ) from None
        raise errors.Permanent(
            f"cannot connect to {url.host}:{url.port} ({_reason(exc.os_error)})", where=where
        ) from None
    except aiohttp.ClientError as exc:
        raise errors.Transient(f"{shown} failed: {type(exc).__name__}: {_reason(exc)}", where=where) from None
    return _verdict(status, shown, is_configured, where)


def _verdict(status: int, shown: str, is_configured: bool, where: str) -> str:
    if status in (401, 403):
        raise errors.Permanent(f"credentials refused: {shown} answered HTTP {status}", where=where)
    if status >= 500:
        raise errors.Transient(f"{shown} answered HTTP {status} (a server error)", where=where)
    if status >= 400 and is_configured:
        raise errors.Permanent(f"{shown} answered HTTP {status}; expected a status below 400", where=where)
    if status >= 400:
        return f"reached {shown}: HTTP {status} (set check_path to a URL that answers 200 for a stronger test)"
    return f"reached {shown}: HTTP {status}"


def _shown(url: yarl.URL) -> str:
    """`GET scheme://host:port/path`, without the query (it may carry an API key) or user info."""
    return f"GET {url.with_query(None).with_user(None)}"


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "verify_message", None) or getattr(exc, "reason", None) or str(exc)
    return errors.redact_text(str(reason), limit=160)
