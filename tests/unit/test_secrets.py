"""Encrypted secrets (`secrets.enc.yaml` + key) and the redactor: resolution order, key safety, clear errors."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from urllib.parse import quote, quote_plus

import pytest
from cryptography.fernet import Fernet, MultiFernet

from seamflow import engine, errors, redact

secrets = engine.secrets


@pytest.fixture
def project(tmp_path: Path) -> Path:
    secrets.create_key_file(tmp_path)
    return tmp_path


def key_of(root: Path) -> secrets.SecretKey:
    return secrets.read_key(root, {})


def test_a_stored_secret_round_trips_and_the_file_holds_no_plaintext(project: Path) -> None:
    secrets.SecretsFile(project).store(key_of(project), "erp_password", "Erp-pa55-1a2b3c")
    text = (project / "secrets.enc.yaml").read_text()
    assert "Erp-pa55-1a2b3c" not in text and "format: seamflow-secrets/1" in text
    assert secrets.resolve_secrets(project, {}) == {"erp_password": "Erp-pa55-1a2b3c"}


def test_the_environment_wins_over_the_file_and_needs_no_key(project: Path) -> None:
    secrets.SecretsFile(project).store(key_of(project), "crm_token", "from-the-file-77")
    (project / secrets.KEY_FILE).unlink()
    env = {"SEAMFLOW_SECRET_CRM_TOKEN": "from-the-env-88"}
    assert secrets.resolve_secrets(project, env) == {"crm_token": "from-the-env-88"}
    assert secrets.list_secrets(project, env) == [
        secrets.SecretInfo("crm_token", secrets.Source.ENV, is_overriding_file=True)
    ]


def test_the_key_variable_is_not_a_secret_called_key(project: Path) -> None:
    env = {"SEAMFLOW_SECRET_KEY": Fernet.generate_key().decode()}
    assert secrets.resolve_secrets(project, env) == {}
    assert secrets.list_secrets(project, env) == []


def test_list_shows_names_and_sources_without_decrypting(project: Path) -> None:
    secrets.SecretsFile(project).store(key_of(project), "b_token", "bbbb-value-1")
    (project / secrets.KEY_FILE).unlink()  # listing needs no key
    infos = secrets.list_secrets(project, {"SEAMFLOW_SECRET_A_TOKEN": "aaaa-value-2"})
    assert [(i.name, i.source.value) for i in infos] == [("a_token", "env"), ("b_token", "file")]


def test_the_key_file_is_created_owner_only_and_never_overwritten(tmp_path: Path) -> None:
    path = secrets.create_key_file(tmp_path)
    assert os.stat(path).st_mode & 0o777 == 0o600
    before = path.read_bytes()
    with pytest.raises(errors.Conflict, match="never overwritten"):
        secrets.create_key_file(tmp_path)
    assert path.read_bytes() == before


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_key_file_readable_by_group_or_others_is_refused_like_ssh(project: Path, mode: int) -> None:
    (project / secrets.KEY_FILE).chmod(mode)
    with pytest.raises(errors.InvalidInput, match=rf"permissions {mode:04o} .* too open.*chmod 600") as failure:
        secrets.read_key(project, {})
    assert failure.value.code == "secrets.key_unsafe"


def test_no_key_at_all_says_where_one_is_expected(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInput, match=r"SEAMFLOW_SECRET_KEY is not set and .*secret\.key does not exist"):
        secrets.read_key(tmp_path, {})


def test_a_malformed_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(errors.InvalidInput, match="not a valid key") as failure:
        secrets.read_key(tmp_path, {"SEAMFLOW_SECRET_KEY": "too-short"})
    assert "too-short" not in failure.value.message


def test_a_wrong_key_names_the_secret_but_never_its_ciphertext(project: Path) -> None:
    secrets.SecretsFile(project).store(key_of(project), "bank_api_key", "bank-k3y-value")
    token = secrets.SecretsFile(project).tokens()["bank_api_key"]
    other = {"SEAMFLOW_SECRET_KEY": Fernet.generate_key().decode()}
    with pytest.raises(errors.InvalidInput, match=r"secret 'bank_api_key' .* could not be decrypted") as failure:
        secrets.resolve_secrets(project, other)
    assert failure.value.code == "secrets.undecryptable"
    assert token not in failure.value.message and token[:20] not in failure.value.message


def test_a_token_copied_to_another_name_is_refused(project: Path) -> None:
    box = secrets.SecretsFile(project)
    box.store(key_of(project), "admin_password", "admin-pa55-x1")
    tokens = box.tokens()
    box.save({**tokens, "guest_password": tokens["admin_password"]})
    with pytest.raises(errors.InvalidInput, match="'guest_password'"):
        secrets.resolve_secrets(project, {})


def test_rotate_key_re_encrypts_and_the_old_key_no_longer_decrypts(project: Path) -> None:
    box = secrets.SecretsFile(project)
    old = key_of(project)
    box.store(old, "one", "value-one-111")
    box.store(old, "two", "value-two-222")
    old_text = (project / secrets.KEY_FILE).read_text().strip()
    assert secrets.rotate_key(project, old) == 2
    assert (project / secrets.KEY_FILE).read_text().strip() != old_text
    assert os.stat(project / secrets.KEY_FILE).st_mode & 0o777 == 0o600
    assert secrets.resolve_secrets(project, {}) == {"one": "value-one-111", "two": "value-two-222"}
    with pytest.raises(errors.InvalidInput, match="could not be decrypted"):
        secrets.resolve_secrets(project, {"SEAMFLOW_SECRET_KEY": old_text})


def test_a_rotation_stopped_before_the_key_rename_still_decrypts(project: Path) -> None:
    box = secrets.SecretsFile(project)
    box.store(key_of(project), "one", "value-one-333")
    new_key = Fernet.generate_key()
    pending = project / ".seamflow" / "secret.key.new"
    pending.write_bytes(new_key)
    pending.chmod(0o600)
    fresh = secrets.SecretKey(MultiFernet([Fernet(new_key)]), "new")
    box.save({"one": secrets._encrypt(fresh, "one", "value-one-333")})
    assert secrets.resolve_secrets(project, {}) == {"one": "value-one-333"}
    assert secrets.rotate_key(project, key_of(project)) == 1, "the next rotation finishes the stopped one first"
    assert not pending.exists()
    assert secrets.resolve_secrets(project, {}) == {"one": "value-one-333"}


def test_rotate_key_refuses_a_key_from_the_environment(project: Path) -> None:
    env_key = secrets.read_key(project, {"SEAMFLOW_SECRET_KEY": Fernet.generate_key().decode()})
    with pytest.raises(errors.Conflict, match="comes from SEAMFLOW_SECRET_KEY"):
        secrets.rotate_key(project, env_key)


def test_delete_removes_only_that_secret(project: Path) -> None:
    box = secrets.SecretsFile(project)
    box.store(key_of(project), "keep", "keep-value-1")
    box.store(key_of(project), "drop", "drop-value-2")
    assert box.delete("drop") and not box.delete("drop")
    assert set(box.tokens()) == {"keep"}


@pytest.mark.parametrize("name", ["Upper", "1st", "with-dash", "", "a" * 64, "秘密"])
def test_a_secret_name_must_be_readable_as_secrets_dot_name(name: str) -> None:
    with pytest.raises(errors.InvalidInput, match="expected lower-case letters"):
        secrets.check_name(name)


def test_a_file_that_is_not_a_secrets_file_says_what_was_expected(tmp_path: Path) -> None:
    (tmp_path / "secrets.enc.yaml").write_text("just: text\n")
    with pytest.raises(errors.InvalidInput, match="format is not 'seamflow-secrets/1'"):
        secrets.resolve_secrets(tmp_path, {})


# --- the redactor -------------------------------------------------------------------------------


def test_the_value_and_its_simple_encodings_are_masked() -> None:
    value = "Red/act+me 9f?&é"
    redact.register(value)
    raw = value.encode()
    forms = [
        value,
        quote(value, safe=""),
        quote_plus(value),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
        json.dumps(value)[1:-1],
    ]
    for form in forms:
        assert redact.mask_text(f"before {form} after") == "before *** after", form


def test_mask_masks_strings_and_keys_in_json_and_keeps_the_shape() -> None:
    redact.register("json-s3cret-42")
    value = {"a": ["x json-s3cret-42 y", 3, None], "json-s3cret-42": {"n": 1.5}}
    assert redact.mask(value) == {"a": ["x *** y", 3, None], "***": {"n": 1.5}}


def test_values_shorter_than_four_characters_are_not_masked() -> None:
    redact.register("abc")
    assert redact.mask_text("abcdef abc") == "abcdef abc"


def test_a_resolved_secret_is_masked_in_error_messages(project: Path) -> None:
    secrets.SecretsFile(project).store(key_of(project), "late", "resolved-l8te-value")
    secrets.resolve_secrets(project, {})
    assert errors.redact("said resolved-l8te-value") == "'said ***'"


def test_log_records_are_masked_in_message_arguments_extra_fields_and_tracebacks() -> None:
    import io
    import logging

    from seamflow.cli.logs import JsonFormatter, RedactingFilter

    redact.register("log-s3cret-5d6e")
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("seamflow.test_redaction")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("calling with %s", "Bearer log-s3cret-5d6e", extra={"url": "https://x/?k=log-s3cret-5d6e"})
        try:
            raise RuntimeError("target said log-s3cret-5d6e")
        except RuntimeError:
            logger.exception("failed")
    finally:
        logger.removeHandler(handler)
    text = stream.getvalue()
    assert "log-s3cret-5d6e" not in text
    assert (
        '"message":"calling with Bearer ***"' in text and "?k=***" in text and "RuntimeError: target said ***" in text
    )
