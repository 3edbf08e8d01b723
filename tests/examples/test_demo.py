"""`seamflow demo` as a newcomer runs it: a subprocess with the real CRM, ERP, mail server and Seamflow.

One short run checks the end (every feed caught up, CRM and ERP compared and agreeing, a summary
for the business in English and Chinese, every dead letter explained, `--keep` paths that exist
and commands that work on them, order to cash and approval waiting per approver from the event log,
the process maps written as HTML and JSON, no process left behind); one run is stopped with Ctrl-C and
still prints its summary. Together they take well under a minute.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.server import free_port

pytestmark = pytest.mark.timeout(180)

BUSINESS_LINES = {
    "en": (
        "Orders created in the ERP from signed contracts, typed by nobody:",
        "Time from contract signed to ERP order: median",
        "Payments synced back to the CRM:",
        "Mails sent:",
        "Manual re-typing avoided:",
        "Problems caught, waiting for a person:",
    ),
    "zh": (
        "已签合同自动生成 ERP 销售订单（无人工录入）：",
        "合同签约到 ERP 订单生成：中位数",
        "回款同步回 CRM：",
        "已发送邮件：",
        "免去人工重复录入：",
        "发现的问题（待人工处理）：",
    ),
}


def _children(pid: int) -> set[int]:
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.add(int(entry.name))
    return found


async def _start_demo(*args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "seamflow",
        "demo",
        "--port",
        str(free_port()),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env={k: v for k, v in os.environ.items() if not k.startswith("SEAMFLOW_")},
    )


async def _watch_children(process: asyncio.subprocess.Process, children: set[int]) -> None:
    while process.returncode is None:
        children.update(_children(process.pid))
        await asyncio.sleep(0.2)


def _assert_no_process_left(children: set[int]) -> None:
    assert len(children) >= 2, "the CRM and the ERP ran as their own processes"
    alive = [pid for pid in children if Path(f"/proc/{pid}").exists()]
    assert alive == [], f"processes left behind: {alive}"


def _assert_business_summary(text: str) -> None:
    for lang, lines in BUSINESS_LINES.items():
        for line in lines:
            assert line in text, f"{lang} summary line missing: {line}\n{text}"


def _assert_every_dead_letter_explained(text: str) -> None:
    dead = int(re.search(r"final\s+runs\s+\d+ \(completed \d+, failed \d+, dead letters (\d+)", text).group(1))  # type: ignore[union-attr]
    assert dead >= 4, "the seeded mistakes (3 landline ERP customers, a contract for SF-NAS-4B) are dead letters"
    english = text[text.index("Lead to cash, for the business:") : text.index("线索到回款 · 业务摘要：")]
    assert f"Problems caught, waiting for a person: {dead} dead letters" in english, english
    assert f"发现的问题（待人工处理）：{dead} 个死信" in text
    groups = re.findall(r"^    (\d+) × (.+)$", english, flags=re.MULTILINE)
    assert sum(int(n) for n, _ in groups) == dead, groups
    unexplained = [what for _, what in groups if "not one of the demo's mistakes" in what or "did not plan" in what]
    assert unexplained == [], english
    assert re.search(r"HT-\d{4}-\d+ \S+: SF-NAS-4B  \(run_\w+\)", english), "the contract and the product are named"
    assert re.search(r"ERP 2: 010-82561234  \(run_\w+\)", english), "the landline is named"


def _assert_approvals_summary(text: str) -> None:
    """Reimbursements approved in the simulated DingTalk are each paid once; purchase requests made orders."""
    decided = re.search(
        r"Reimbursements submitted to DingTalk: (\d+); decided there: (\d+) approved, (\d+) refused", text
    )
    assert decided, text
    submitted, approved, refused = (int(n) for n in decided.groups())
    assert submitted >= 2 and approved + refused == submitted, "every reimbursement was decided before the end"
    paid = re.search(r"Payments recorded by finance from DingTalk approvals: (\d+) \(¥", text)
    assert paid and int(paid.group(1)) == approved, "one payment per approved reimbursement, never two"
    orders = re.search(r"Purchase requests: (\d+); inbox decisions: (\d+) .*; ERP purchase orders: (\d+)", text)
    assert orders and int(orders.group(1)) >= 2 and int(orders.group(2)) >= int(orders.group(3)), text
    assert f"财务系统据钉钉审批记录的付款：{approved} 笔" in text


async def test_demo_ends_caught_up_with_crm_and_erp_agreeing_and_explains_itself() -> None:
    process = await _start_demo("--duration", "8", "--rate", "6", "--keep", "--approver-pace", "0.3:1.5")
    children: set[int] = set()
    watcher = asyncio.create_task(_watch_children(process, children))
    output, _ = await asyncio.wait_for(process.communicate(), timeout=150)
    await watcher
    text = output.decode()
    kept = re.search(r"^Kept (\S+): ", text, flags=re.MULTILINE)
    try:
        assert process.returncode == 0, text
        assert "Every feed has caught up" in text, text
        _assert_business_summary(text)
        _assert_every_dead_letter_explained(text)
        _assert_approvals_summary(text)
        agreed = re.search(r"CRM and ERP agree on all (\d+) linked customers", text)
        assert agreed and int(agreed.group(1)) > 10, text
        assert f"CRM 与 ERP 的 {agreed.group(1)} 家关联客户资料完全一致" in text
        assert "not linked by the sync" not in text and "writing them to the other system failed" not in text
        assert kept is not None, text
        _assert_insight_summary(text, Path(kept.group(1)))
        _assert_kept_commands_work(text, Path(kept.group(1)))
        _assert_no_process_left(children)
    finally:
        if kept is not None:
            shutil.rmtree(kept.group(1), ignore_errors=True)


def _assert_insight_summary(text: str, root: Path) -> None:
    """Order to cash, approval waiting per approver and the process maps, from the events the flows emitted."""
    o2c = re.search(
        r"Order to cash \(contract signed → payment received\): median [\d.]+ s, p90 [\d.]+ s, (\d+) orders", text
    )
    paid = re.search(r"Payments synced back to the CRM: (\d+) contracts", text)
    assert o2c and paid and 0 < int(o2c.group(1)) <= int(paid.group(1)), "paid orders are cases of order to cash"
    regions = re.findall(r"^    (华东|华北|华南|西南|其他): median [\d.]+ s, (\d+) orders$", text, flags=re.MULTILINE)
    assert regions and sum(int(n) for _, n in regions) == int(o2c.group(1)), regions
    approvers = re.findall(r"^    (\S+): median [\d.]+ s, p90 [\d.]+ s, (\d+) decisions$", text, flags=re.MULTILINE)
    assert {name for name, _ in approvers} <= {"赵磊", "陈静", "张伟"} and approvers, text
    decisions = re.search(r"inbox decisions: (\d+)", text)
    assert decisions and sum(int(n) for _, n in approvers) == int(decisions.group(1)), (approvers, decisions)
    assert "订单处理周期（合同签约 → 回款）：中位数" in text and "各审批人审批时长（Seamflow 审批待办）：" in text
    for object_type in ("order", "purchase_request", "reimbursement"):
        html, as_json = (root / "insight" / f"process-map-{object_type}.{ext}" for ext in ("html", "json"))
        assert f"    {html}" in text and f"    {as_json}" in text, text
        drawn = json.loads(as_json.read_text(encoding="utf-8"))
        assert drawn["cases"] > 0 and drawn["edges"], drawn
        assert "<svg" in html.read_text(encoding="utf-8")
    order_map = json.loads((root / "insight" / "process-map-order.json").read_text(encoding="utf-8"))
    assert order_map["start_activities"] == {"Contract signed": order_map["cases"]}
    assert {"Invoice issued", "Payment received"} <= {e["target"] for e in order_map["edges"]}


def _assert_kept_commands_work(text: str, root: Path) -> None:
    assert root.is_dir() and (root / "crm.db").is_file() and (root / "erp.db").is_file()
    commands = [line.strip() for line in text[text.index("Look closer") :].splitlines()[1:] if line.startswith("  ")]
    assert any("runs list" in c for c in commands) and any("dead-letters" in c for c in commands), commands
    for command in commands:
        for word in shlex.split(command.split("#")[0]):
            if word.startswith("/"):
                assert Path(word).exists(), f"{word} (printed in {command!r}) does not exist"
    for command in (c for c in commands if "runs list" in c or "dead-letters" in c or "runs show" in c):
        done = subprocess.run(shlex.split(command), capture_output=True, text=True, timeout=60, check=False)
        assert done.returncode == 0 and "run_" in done.stdout, (command, done.stdout, done.stderr)
    kpi = next(c for c in commands if " kpi --project" in c)
    done = subprocess.run(shlex.split(kpi), capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0 and "order_to_cash" in done.stdout and "approval_wait" in done.stdout, done


async def test_ctrl_c_prints_the_summary_so_far_and_exits_130() -> None:
    process = await _start_demo("--duration", "120", "--rate", "5")
    children: set[int] = set()
    watcher = asyncio.create_task(_watch_children(process, children))
    assert process.stdout is not None
    seen: list[str] = []

    async def traffic_reported() -> None:
        while not re.match(r"\s+t=\s*\d+s\s+runs\s+[1-9]", seen[-1] if seen else ""):
            line = await process.stdout.readline()  # type: ignore[union-attr]
            assert line, "the demo ended before its traffic:\n" + "".join(seen)
            seen.append(line.decode())

    await asyncio.wait_for(traffic_reported(), timeout=90)
    process.send_signal(signal.SIGINT)
    rest = await asyncio.wait_for(process.stdout.read(), timeout=60)
    await asyncio.wait_for(process.wait(), timeout=30)
    await watcher
    text = "".join(seen) + rest.decode()
    assert process.returncode == 130, text
    assert "Stopped (Ctrl-C). What happened so far:" in text and "final" in text
    _assert_business_summary(text)
    assert "CRM and ERP customers not compared" in text and "未比对 CRM 与 ERP 客户" in text
    assert "Traceback" not in text and "Aborted" not in text, text
    assert re.search(r"^Removed /\S+", text, flags=re.MULTILINE), text
    _assert_no_process_left(children)


def test_a_taken_port_is_one_clear_line_before_anything_starts(tmp_path: Path) -> None:
    import socket

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        env = {**os.environ, "TMPDIR": str(tmp_path)}
        done = subprocess.run(
            [sys.executable, "-m", "seamflow", "demo", "--port", str(port), "--duration", "5"],
            capture_output=True,
            text=True,
            timeout=120,
            env=env,
        )
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stderr.strip() == (
        f"error [serve.port_in_use]: port 127.0.0.1:{port} is in use by another process; expected a free port (--port)"
    )
    assert "Traceback" not in done.stdout + done.stderr and "Ctrl-C" not in done.stdout
    assert list(tmp_path.iterdir()) == [], "no demo folder is made before the port is known to be free"
