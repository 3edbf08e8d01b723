"""The directory: who takes part in processes and who may use Seamflow.

Users (login, name, e-mail, mainland mobile, department, positions, manager, roles), the
department tree with its heads, positions that approval routing asks for; passwords (argon2),
lockout after repeated failures, personal API tokens with scopes and expiry, console sessions.
Loaded from `directory.yaml` (`seamflow users import`), the REST API, or a flow through the
built-in `directory` connection. See docs/howto/directory.md.
"""

from __future__ import annotations

from seamflow.directory.answers import grant_json, token_json, user_json
from seamflow.directory.credentials import TOKEN_PREFIX, LockoutPolicy, SignInSettings, digest, record_attempt
from seamflow.directory.grants import FlowGrant, FlowRef, check_subject, check_target, covers, folder_of
from seamflow.directory.importing import DirectoryFile, check_entry, read_directory_file, read_directory_text
from seamflow.directory.model import (
    ROLE_SCOPES,
    DepartmentEntry,
    PositionEntry,
    Role,
    Scope,
    UserEntry,
    mainland_mobile,
    scopes_of,
)
from seamflow.directory.oidc import OidcSettings, OidcSignIn, read_oidc_settings
from seamflow.directory.principal import Principal
from seamflow.directory.service import Directory, IssuedSession, IssuedToken
from seamflow.directory.token_cache import TOKEN_CACHE_TTL

__all__ = [
    "ROLE_SCOPES",
    "TOKEN_CACHE_TTL",
    "TOKEN_PREFIX",
    "DepartmentEntry",
    "Directory",
    "DirectoryFile",
    "FlowGrant",
    "FlowRef",
    "IssuedSession",
    "IssuedToken",
    "LockoutPolicy",
    "OidcSettings",
    "OidcSignIn",
    "PositionEntry",
    "Principal",
    "Role",
    "Scope",
    "SignInSettings",
    "UserEntry",
    "check_entry",
    "check_subject",
    "check_target",
    "covers",
    "digest",
    "folder_of",
    "grant_json",
    "mainland_mobile",
    "read_directory_file",
    "read_directory_text",
    "read_oidc_settings",
    "record_attempt",
    "scopes_of",
    "token_json",
    "user_json",
]
