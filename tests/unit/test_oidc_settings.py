"""`oidc.yaml`: a good file gives settings, its secret looked up; a bad one names each problem at file:line:column."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from seamflow import directory, errors, redact

GOOD = """\
name: 恒达 SSO
issuer: https://sso.hengda-trading.com.cn/realms/hengda/
client_id: seamflow
client_secret: "{{ secrets.oidc_client_secret }}"
groups_claim: groups
group_roles: {seamflow-admins: admin}
clock_skew_s: 90
"""


def test_a_good_file_gives_settings_and_registers_the_secret_for_redaction(tmp_path: Path) -> None:
    path = tmp_path / "oidc.yaml"
    path.write_text(GOOD, encoding="utf-8")
    settings = directory.read_oidc_settings(path, {"oidc_client_secret": "Hd7q2Wm9-secret-of-the-client"})
    assert settings.issuer == "https://sso.hengda-trading.com.cn/realms/hengda"  # no trailing slash
    assert settings.clock_skew == timedelta(seconds=90) and settings.match == "email"
    assert settings.group_roles == {"seamflow-admins": directory.Role.ADMIN}
    assert "Hd7q2Wm9-secret-of-the-client" not in repr(settings)
    assert redact.mask_text("secret: Hd7q2Wm9-secret-of-the-client") == "secret: ***"


def test_a_bad_file_names_each_problem_where_it_is(tmp_path: Path) -> None:
    path = tmp_path / "oidc.yaml"
    path.write_text(GOOD.replace("client_id: seamflow\n", "").replace("admin}", "owner}") + "colour: blue\n")
    with pytest.raises(errors.InvalidInput) as caught:
        directory.read_oidc_settings(path, {"oidc_client_secret": "Hd7q2Wm9-secret-of-the-client"})
    assert caught.value.code == "oidc.invalid"
    text = str(caught.value)
    assert f"{path}:5:" in text and "owner" in text  # group_roles: not a role
    assert f"{path}:7:" in text and "colour" in text  # an unknown field
    assert "'client_id' is missing" in text and "unknown field 'colour'" in text


def test_a_client_secret_that_is_not_set_is_named(tmp_path: Path) -> None:
    path = tmp_path / "oidc.yaml"
    path.write_text(GOOD, encoding="utf-8")
    with pytest.raises(errors.InvalidInput, match=r"oidc.yaml:4:\d+ .*'oidc_client_secret', which is not set"):
        directory.read_oidc_settings(path, {})
    path.write_text(GOOD.replace('"{{ secrets.oidc_client_secret }}"', "plain-text-secret"), encoding="utf-8")
    with pytest.raises(errors.InvalidInput) as caught:
        directory.read_oidc_settings(path, {})
    assert "plain-text-secret" not in str(caught.value) and "{{ secrets.<name> }}" in str(caught.value)
