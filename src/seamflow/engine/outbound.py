"""The project's outbound guard: `[outbound] allow` in `seamflow.toml`, on top of the process's.

Every connection starts from this guard and adds its own `outbound_allow` (see
`connectors.Outbound`); the guard itself lives in the connectors, which enforce it.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

from seamflow import connectors, errors

__all__ = ["SETTINGS_FILE", "project_outbound"]

SETTINGS_FILE = "seamflow.toml"


def project_outbound(root: Path | None, environ: Mapping[str, str] | None = None) -> connectors.Outbound:
    """Public addresses, plus `SEAMFLOW_OUTBOUND_ALLOW`, plus `[outbound] allow` of `<root>/seamflow.toml`.

    Raises:
        errors.InvalidInput: `outbound.invalid_allow`: the file is not TOML (line and column
            given), `[outbound]` has another key than `allow`, or an entry is not an address,
            a CIDR network or a host name.
    """
    outbound = connectors.Outbound.from_environment(environ)
    path = None if root is None else root / SETTINGS_FILE
    if path is None or not path.is_file():
        return outbound
    try:
        settings = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise errors.InvalidInput(f"{path}: {exc}; expected TOML", code="outbound.invalid_allow") from None
    section = settings.get("outbound", {})
    where = f"{path} [outbound]"
    if not isinstance(section, dict) or set(section) - {"allow"}:
        raise errors.InvalidInput(
            f"{where}: got {errors.redact(section)}; expected a table with one key, allow",
            code="outbound.invalid_allow",
        )
    allow = section.get("allow", [])
    if not isinstance(allow, list):
        raise errors.InvalidInput(
            f"{where} allow: got {errors.redact(allow)}; expected a list of addresses, CIDR networks or host names",
            code="outbound.invalid_allow",
        )
    return outbound.allowing(allow, f"{where} allow")
