"""The examples of the data-quality and migration how-tos are valid files: rule files parse, the
migration file fits the format, the flow loads, and the rule file checks what the page says it does."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from seamflow import flows, quality

DOCS = Path(__file__).resolve().parents[2] / "docs" / "howto"


def _blocks(page: str) -> dict[str, str]:
    text = (DOCS / page).read_text(encoding="utf-8")
    found = {}
    for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.S):
        first = block.splitlines()[0]
        if first.startswith("# "):
            found[first[2:].strip()] = block
    return found


def test_the_rule_file_of_the_data_quality_page_parses_and_checks_as_described() -> None:
    rules = quality.parse_rules(_blocks("data-quality.md")["rules/members.yaml"], "rules/members.yaml")
    outcome = rules.check(
        {
            "member_no": "M00000001",
            "name": "王芳",
            "mobile": "+86 138 0013 8000",
            "balance": "壹仟贰佰捌拾捌元伍角",
            "joined": "2026年12月7日",
            "province": "粤",
            "level": "金卡会员",
            "tax_id": "91110000600037341L",
        }
    )
    assert outcome.is_valid, outcome.violations
    assert outcome.values["mobile"] == "+8613800138000" and outcome.values["province"] == "广东省"
    poor = rules.check(
        {"member_no": "M00000001", "name": "王芳", "mobile": "13800138000", "balance": "10", "level": "金卡会员"}
    )
    assert [v.rule for v in poor.violations] == ["checks.gold_has_balance"]


def test_the_flow_of_the_data_quality_page_loads() -> None:
    flow, _ = flows.load.load_flow_text(_blocks("data-quality.md")["flows/new-member.yaml"], "flows/new-member.yaml")
    assert flow.steps[0].action == "quality.validate"  # type: ignore[union-attr]


def test_the_migration_file_of_the_migration_page_fits_the_format() -> None:
    mapping = quality.Mapping.model_validate(yaml.safe_load(_blocks("migration.md")["migrations/members.yaml"]))
    assert mapping.key == ["member_no"] and mapping.target.sql is not None and mapping.batch == 5000
