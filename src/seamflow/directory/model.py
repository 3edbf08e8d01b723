"""What the directory holds: users, departments and positions as they are written (YAML, API, flows),
and the permission roles with the scopes each grants.
"""

from __future__ import annotations

import enum
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "ROLE_SCOPES",
    "DepartmentEntry",
    "PositionEntry",
    "Role",
    "Scope",
    "UserEntry",
    "mainland_mobile",
    "scopes_of",
]


class Scope(enum.StrEnum):
    """What a credential may do; every REST route requires one (`api.access`)."""

    READ = "read"
    """See flows, runs, events, connections, syncs, the directory."""
    OPERATE = "operate"
    """Start, replay and signal runs; resolve sync conflicts."""
    BUILD = "build"
    """Change flows and connections (reload, deploy)."""
    APPROVE = "approve"
    """Decide approval tasks."""
    ADMIN = "admin"
    """Manage users, roles and tokens."""


class Role(enum.StrEnum):
    """A permission role assigned to a user; it grants scopes (`ROLE_SCOPES`)."""

    VIEWER = "viewer"
    OPERATOR = "operator"
    BUILDER = "builder"
    APPROVER = "approver"
    ADMIN = "admin"


ROLE_SCOPES: dict[Role, frozenset[Scope]] = {
    Role.VIEWER: frozenset({Scope.READ}),
    Role.OPERATOR: frozenset({Scope.READ, Scope.OPERATE}),
    Role.BUILDER: frozenset({Scope.READ, Scope.OPERATE, Scope.BUILD}),
    Role.APPROVER: frozenset({Scope.READ, Scope.APPROVE}),
    Role.ADMIN: frozenset(Scope),
}
"""The one table of what each role may do."""


def scopes_of(roles: object) -> frozenset[Scope]:
    """Every scope the given role names grant (unknown names grant nothing)."""
    granted: set[Scope] = set()
    for name in roles if isinstance(roles, list | tuple | set | frozenset) else ():
        if name in Role.__members__.values():
            granted |= ROLE_SCOPES[Role(name)]
    return frozenset(granted)


def mainland_mobile(value: str) -> str:
    """A mainland China mobile number in E.164 form (`+8613812345678`).

    Accepts `13812345678`, `138-1234-5678`, `+86 138 1234 5678`, `0086…`.

    Raises:
        ValueError: the text is not a valid mainland mobile number (the message says what was expected).
    """
    import phonenumbers  # on first use: 20 ms of import that serve's start need not pay

    text = value.strip()
    if text.startswith("0086"):
        text = "+" + text[2:]
    expected = "a mainland China mobile number such as 13812345678 or +86 138 1234 5678"
    try:
        number = phonenumbers.parse(text, "CN")
    except phonenumbers.NumberParseException:
        raise ValueError(f"not a phone number; expected {expected}") from None
    kind = phonenumbers.number_type(number)
    mobile = (phonenumbers.PhoneNumberType.MOBILE, phonenumbers.PhoneNumberType.FIXED_LINE_OR_MOBILE)
    if number.country_code != 86 or not phonenumbers.is_valid_number(number) or kind not in mobile:
        raise ValueError(f"not a mainland mobile number; expected {expected}")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


_KEY = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,99}$")
Key = Annotated[str, Field(pattern=_KEY.pattern)]
_KEY_TEXT = "letters, digits and _ . @ - (not first), at most 100: an id such as finance or zhangwei"
Mobile = Annotated[str, AfterValidator(mainland_mobile)]


class DepartmentEntry(BaseModel):
    """A department: a node of the tree (`parent`), with a head (a user's login; left out: keep the stored head)."""

    model_config = ConfigDict(extra="forbid")

    id: Key = Field(description=_KEY_TEXT)
    name: str = Field(min_length=1, max_length=200)
    parent: Key | None = Field(None, description=_KEY_TEXT)
    head: Key | None = Field(None, description=_KEY_TEXT)


class PositionEntry(BaseModel):
    """A position approval routing can ask for: `finance_director`, `buyer`."""

    model_config = ConfigDict(extra="forbid")

    id: Key = Field(description=_KEY_TEXT)
    name: str = Field(min_length=1, max_length=200)


class UserEntry(BaseModel):
    """A user as written in `directory.yaml`, the API or a flow; `login` is the key of an upsert."""

    login: Key = Field(description=_KEY_TEXT)
    name: str = Field(min_length=1, max_length=200, description="display name, e.g. 张伟")
    email: str | None = Field(
        None,
        pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
        max_length=254,
        description="an e-mail address such as zhang.wei@example.com.cn",
    )
    mobile: Mobile | None = None
    department: Key | None = Field(None, description=_KEY_TEXT)
    positions: list[Key] | None = Field(
        None, description="position ids such as finance_director (letters, digits and _ . @ -); left out: keep them"
    )
    manager: Key | None = Field(None, description=_KEY_TEXT)
    is_active: bool = Field(True, alias="active")
    roles: list[Role] | None = Field(None, description="left out: keep the stored roles (a sync does not touch them)")
    im_ids: dict[Literal["dingtalk", "wecom", "feishu"], Key] = Field(
        default_factory=dict,
        description="the user's ids on IM platforms, e.g. {wecom: ZhangWei}; a platform not named uses the login",
    )

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    @field_validator("positions", "roles")
    @classmethod
    def _unique(cls, value: list[str] | None) -> list[str] | None:
        return None if value is None else list(dict.fromkeys(value))
