"""Filling a declared connector's templates: `{{ config.x }}`, `{{ env.X }}` and `{{ input.x }}`.

A value that is one whole template keeps the type of what it names (a list stays a list); a
template inside text is written into it. A template naming an input the step did not give
leaves its key out of the query or body.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from seamflow import errors
from seamflow.ids import Json

__all__ = ["Missing", "render"]

_TEMPLATE = re.compile(r"\{\{\s*(config|env|input)\.([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")


class Missing(Exception):
    """A template named an input the step did not give."""


def _value(scope: str, name: str, values: Mapping[str, Mapping[str, Json]], where: str) -> Json:
    if scope == "env":
        found = os.environ.get(name)
        if found is None:
            raise errors.InvalidInput(
                f"{where}: environment variable {name} is not set; expected it for {{{{ env.{name} }}}}",
                code="connection.invalid",
            )
        return found
    scoped = values.get(scope, {})
    if name not in scoped or scoped[name] is None:
        if scope == "input":
            raise Missing(name)
        raise errors.InvalidInput(
            f"{where}: setting {name!r} is not given; expected it in the connection's config",
            code="connection.invalid",
        )
    return scoped[name]


def render(template: Json, values: Mapping[str, Mapping[str, Json]], where: str) -> Json:
    """`template` with its templates filled; dicts drop keys whose input is missing.

    Raises:
        Missing: a whole-value template (or text) named an input not given.
        errors.InvalidInput: `connection.invalid`: a setting or environment variable is missing.
    """
    if isinstance(template, dict):
        out: dict[str, Json] = {}
        for key, item in template.items():
            try:
                out[key] = render(item, values, where)
            except Missing:
                continue
        return out
    if isinstance(template, list):
        return [render(item, values, where) for item in template]
    if not isinstance(template, str):
        return template
    whole = _TEMPLATE.fullmatch(template.strip())
    if whole is not None:
        return _value(whole.group(1), whole.group(2), values, where)
    return _TEMPLATE.sub(lambda m: _text(_value(m.group(1), m.group(2), values, where)), template)


def _text(value: Json) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
