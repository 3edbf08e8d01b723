"""A flow step validates a record against a rule file (`action: quality.validate`): a good record
goes on normalised, a bad one makes the run a dead letter that names every rule it broke."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

FLOW = """\
id: new-member
trigger:
  manual: {}
steps:
  - id: member
    action: quality.validate
    with: {rules: members, record: "{{ event.body }}"}
  - id: card
    transform: {mobile: "{{ steps.member.record.mobile }}", balance: "{{ steps.member.record.balance }}"}
"""
RULES = """\
id: members
fields:
  mobile: {type: mobile_cn, required: true}
  balance: {type: amount, min: 0}
  id_number: {type: resident_id}
"""


def _project(root: Path) -> None:
    (root / "flows").mkdir(parents=True)
    (root / "rules").mkdir()
    (root / "flows" / "new-member.yaml").write_text(FLOW, encoding="utf-8")
    (root / "rules" / "members.yaml").write_text(RULES, encoding="utf-8")
    (root / "connections.yaml").write_text("quality:\n  connector: quality\n", encoding="utf-8")


def _run(root: Path, body: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seamflow", "run", "new-member", "--input", json.dumps(body, ensure_ascii=False)],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_good_record_goes_on_normalised_and_a_bad_one_is_a_dead_letter_naming_its_rules(project_dir: Path) -> None:
    _project(project_dir)
    good = _run(
        project_dir, {"mobile": "+86 138 0013 8000", "balance": "￥1,288.50", "id_number": "11010519491231002x"}
    )
    assert good.returncode == 0, good.stderr
    assert '"record":{"mobile":"+8613800138000","balance":1288.50,"id_number":"11010519491231002X"}' in good.stdout
    assert 'output {"mobile":"+8613800138000","balance":1288.50}' in good.stdout
    bad = _run(project_dir, {"mobile": "12345", "balance": "-1元"})
    assert bad.returncode == 1
    assert "status   dead_letter" in bad.stdout
    assert (
        "[quality.record_invalid] quality.validate: the record breaks rules members:"
        " mobile.type: '12345' is not a mainland mobile number; balance.min: -1.00 is below 0"
    ) in bad.stdout
