"""`seamflow flow test`: flow-test files beside the flows pass or fail with file:line:column, exit codes for CI,
and nothing reaches the real target (a running sink that must receive nothing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.support.server import make_project
from tests.support.sink import Sink

FLOW = """
id: contract-to-erp
trigger: {webhook: {path: crm/contracts}}
when: "{{ event.body.status == 'signed' }}"
steps:
  - id: customer
    action: erp.post
    with:
      path: /erp/customers
      json: {external_id: "{{ event.body.customer.id }}", name: "{{ event.body.customer.name }}"}
      headers: {X-Erp-Token: "{{ secrets.erp_token }}"}
  - id: order
    action: erp.post
    with:
      path: /erp/orders
      json: {customer: "{{ steps.customer.body.id }}", amount_cents: "{{ event.body.amount | cents }}"}
  - id: done
    transform: {order_no: "{{ steps.order.body.number }}"}
"""

TESTS = """flow: contract-to-erp
secrets: {erp_token: test-token-not-real}
fixtures:
  customer: {answer: {status: 200, body: {id: ERP-C-9}}}
cases:
  - name: a signed contract becomes a sales order
    event_file: events/ht-42.json
    fixtures:
      erp.post: {answer: {status: 201, body: {number: SO-20260042}}}
    expect:
      outcome: completed
      effects:
        - {call: erp.post, step: customer, request: {json: {external_id: C-77, name: 张伟}}}
        - {call: erp.post, step: order, request: {json: {customer: ERP-C-9, amount_cents: AMOUNT}}}
      steps: {done: {output: {order_no: SO-20260042}}}
  - name: a draft contract is ignored
    event: {body: {status: draft}}
    expect: {outcome: ignored, effects: []}
  - name: the ERP refusing the order fails the run
    event_file: events/ht-42.json
    fixtures:
      order: {error: "ERP refused: customer C-77 is frozen"}
    expect: {outcome: failed}
"""

EVENT = {"body": {"status": "signed", "amount": "12800.50", "customer": {"id": "C-77", "name": "张伟"}}}


def _project(root: Path, sink: Sink, amount: str) -> Path:
    make_project(root, {"contract": FLOW}, f"erp:\n  connector: http\n  base_url: {sink.url}\n")
    (root / "flow-tests" / "events").mkdir(parents=True)
    (root / "flow-tests" / "contract.yaml").write_text(TESTS.replace("AMOUNT", amount), encoding="utf-8")
    (root / "flow-tests" / "events" / "ht-42.json").write_text(json.dumps(EVENT, ensure_ascii=False), "utf-8")
    return root


def _flow_test(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "seamflow", "flow", "test", "--project", str(root), *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "SEAMFLOW_SECRET_ERP_TOKEN": "erp-real-token-never-used"},
    )


async def test_passing_cases_exit_0_and_nothing_reaches_the_target(tmp_path: Path, sink: Sink) -> None:
    root = _project(tmp_path / "shop", sink, "1280050")
    result = _flow_test(root)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == [
        "PASS flow-tests/contract.yaml::a signed contract becomes a sales order",
        "PASS flow-tests/contract.yaml::a draft contract is ignored",
        "PASS flow-tests/contract.yaml::the ERP refusing the order fails the run",
        "3 passed, 0 failed",
    ]
    assert sink.requests == []


async def test_a_changed_field_fails_with_expected_and_got_at_the_expectations_line(tmp_path: Path, sink: Sink) -> None:
    root = _project(tmp_path / "shop", sink, "1280000")
    result = _flow_test(root)
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "FAIL flow-tests/contract.yaml::a signed contract becomes a sales order"
    assert lines[1] == (
        "  flow-tests/contract.yaml:14:91 cases[0].expect.effects[1].request.json.amount_cents:"
        " got 1280050; expected 1280000"
    )
    assert lines[-1] == "2 passed, 1 failed"
    assert sink.requests == []


async def test_an_invalid_test_file_exits_2_with_its_position(tmp_path: Path, sink: Sink) -> None:
    root = _project(tmp_path / "shop", sink, "1280050")
    (root / "flow-tests" / "broken.yaml").write_text(
        "flow: contract-to-erp\ncases:\n  - name: x\n    event: {body: {}}\n    expect: {outcome: done}\n", "utf-8"
    )
    result = _flow_test(root)
    assert result.returncode == 2
    assert "flow-tests/broken.yaml:5:23 cases[0].expect.outcome: got 'done'; expected one of completed" in result.stderr
    missing = _flow_test(root, str(root / "flow-tests" / "contract.yaml"), "--project", str(root))
    assert missing.returncode == 0
