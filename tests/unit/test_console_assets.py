"""The console's files: both message catalogues have the same keys, every key the pages use exists,
nothing is loaded from elsewhere, and the flow outline the diagram is drawn from."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from seamflow import console, flows
from seamflow.api.flows import outline

SCRIPTS = sorted((console.STATIC / "js").rglob("*.js"))
PAGES = [console.STATIC / "index.html", console.STATIC / "css" / "console.css", *SCRIPTS]


def _catalogue(language: str) -> dict[str, str]:
    loaded: dict[str, str] = json.loads((console.STATIC / "i18n" / f"{language}.json").read_text(encoding="utf-8"))
    return loaded


def test_every_language_has_the_same_keys_and_no_empty_message() -> None:
    english = _catalogue("en")
    for language in console.LANGUAGES:
        messages = _catalogue(language)
        assert set(messages) == set(english), f"{language}: {sorted(set(messages) ^ set(english))}"
        assert all(text.strip() for text in messages.values()), f"{language} has an empty message"
        for key, text in messages.items():  # the same placeholders in every language
            assert set(re.findall(r"\{(\w+)\}", text)) == set(re.findall(r"\{(\w+)\}", english[key])), key


def test_every_literal_key_the_pages_use_is_in_the_catalogue() -> None:
    known = set(_catalogue("en"))
    used = {
        (path.name, key)
        for path in SCRIPTS
        for key in re.findall(r"\bt\(\"([a-z_]+\.[a-z_.]+)\"", path.read_text(encoding="utf-8"))
    }
    assert len(used) > 50, "the pattern finds the keys"
    missing = sorted(f"{name}: {key}" for name, key in used if key not in known)
    assert not missing, missing


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.name)
def test_nothing_is_loaded_from_another_site(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert not re.search(r"(src|href)=\"(https?:)?//|@import|url\((https?:)?//|fonts\.googleapis", text), path


def test_the_outline_has_every_step_with_its_kind_nested_as_in_the_file() -> None:
    spec = flows.spec.Flow.model_validate(
        {
            "id": "contract-signed-to-erp",
            "trigger": {"webhook": {"path": "crm/contracts"}},
            "steps": [
                {"id": "large", "if": "{{ event.body.amount > 100000 }}",
                 "then": [{"id": "review", "approval": {"requester": "li.na", "levels": [
                     {"name": "销售总监", "assignees": [{"user": "zhang.wei"}]}]}}],
                 "else": [{"id": "note", "emit": {"activity": "Small contract"}}]},
                {"id": "lines", "foreach": "{{ event.body.lines }}",
                 "steps": [{"id": "line", "action": "erp.create_line", "with": {}}]},
                {"id": "paid", "wait": {"signal": "payment.received", "key": "{{ event.body.id }}"}},
            ],
        }
    )  # fmt: skip
    assert outline(spec) == {
        "trigger": {"kind": "webhook", "label": "/hooks/crm/contracts"},
        "steps": [
            {
                "id": "large",
                "kind": "if",
                "label": "{{ event.body.amount > 100000 }}",
                "then": [{"id": "review", "kind": "approval", "label": "销售总监"}],
                "else": [{"id": "note", "kind": "emit", "label": "Small contract"}],
            },
            {
                "id": "lines",
                "kind": "foreach",
                "label": "{{ event.body.lines }}",
                "steps": [{"id": "line", "kind": "action", "label": "erp.create_line"}],
            },
            {"id": "paid", "kind": "wait", "label": "signal payment.received"},
        ],
    }
