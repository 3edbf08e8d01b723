"""The stored state the console page-speed benchmark (`console_pages.py`) measures against.

`runs` runs of five flows over 30 days, each with its event (a business key), one journaled step
and one row of the event log (a business event of an order for a completed run, `run.failed` for
the others), so the Insight page has about as many events as runs; approvals with tasks (the
waiting runs' pending ones, decided ones of older runs) for 21 users; a customer sync with its
records, crosswalk links and conflicts; feedback; the audit trail; a user with a personal API
token whose inbox is measured. Rows go straight into the migrated store's tables: SQLite by
`executemany` in batches, PostgreSQL by `COPY`, so 1,000,000 runs take a minute or two, not hours
of webhooks.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

FLOWS = ["contract-signed-to-erp", "erp-shipment-to-crm", "invoice-paid", "member-sync", "procure-to-pay"]
ACTIVITIES = ["Sales order created", "Order shipped", "Payment received", "Member updated", "Order closed"]
REGIONS = ["华东", "华北", "华南", "西南"]
DAY_MS = 86_400_000
USER = "finance.manager"
USER_TOKEN = "sfp_bench_user_0123456789abcdefghijklmnopqrst"
MANAGERS = [USER, *(f"manager{n:02d}" for n in range(1, 21))]
SYNC = "customers"
SYNC_RECORDS = 100_000
CONFLICTS, OPEN_CONFLICTS = 300, 60
FEEDBACK, OPEN_FEEDBACK = 2_000, 150
AUDIT_ENTRIES = 100_000
BATCH = 20_000

Row = tuple[Any, ...]


@dataclass(frozen=True, slots=True)
class Seeded:
    """What the benchmark asks for: a run in the middle (its id and creation time) and a pending task."""

    middle_run: str
    middle_at_ms: int
    pending_task: str


def status_of(i: int) -> str:
    bucket = i % 100
    return "failed" if bucket < 2 else "dead_letter" if bucket == 2 else "waiting" if bucket == 3 else "completed"


def _text(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class Plan:
    """The rows of each table for `runs` runs, generated in creation order."""

    def __init__(self, runs: int, now_ms: int | None = None) -> None:
        self.runs = runs
        self.start_ms = (now_ms or int(time.time() * 1000)) - 30 * DAY_MS
        self.step_ms = max(1, 30 * DAY_MS // runs)

    def at(self, i: int) -> int:
        return self.start_ms + i * self.step_ms

    def run_id(self, i: int) -> str:
        return f"run_{self.at(i):013d}{i:08d}"

    def seeded(self) -> Seeded:
        middle = self.runs // 2
        waiting = next(i for i in range(len(MANAGERS) * 100) if status_of(i) == "waiting" and self._assignee(i) == USER)
        return Seeded(self.run_id(middle), self.at(middle), f"tsk_{waiting:08d}")

    def run_rows(self, first: int, last: int) -> dict[str, list[Row]]:
        """events, runs, journal and event_log rows of runs [first, last)."""
        out: dict[str, list[Row]] = {"events": [], "runs": [], "journal": [], "event_log": []}
        for i in range(first, last):
            at, flow, status = self.at(i), FLOWS[i % len(FLOWS)], status_of(i)
            event_id, run_id = f"evt_{at:013d}{i:08d}", self.run_id(i)
            body = _text({"order_no": f"SO-{i:08d}", "amount": f"{(i % 9000) + 100}.00"}).encode()
            out["events"].append((event_id, flow, "manual", f"SO-{i:08d}", body, None, at))
            is_bad = status in ("failed", "dead_letter")
            error = '{"code":"connector.permanent","message":"HTTP 400"}' if is_bad else None
            finished = None if status == "waiting" else at + 800
            out["runs"].append((run_id, flow, "v1", event_id, status, 0, error, at, at + 800, finished))
            step = "failed" if is_bad else "completed"
            output = None if is_bad else _text({"number": f"ERP-{i:08d}"}).encode()
            out["journal"].append((run_id, "order", 1, 0, "transform", step, body, output, error, at + 10, at + 790))
            out["event_log"].append(self._log_row(i, at, flow, run_id, status))
        return out

    def _log_row(self, i: int, at: int, flow: str, run_id: str, status: str) -> Row:
        if status != "completed":
            return (at + 800, f"run.{status}", flow, run_id, None, None, None, None)
        case = i // len(FLOWS)
        objects = {
            "order": {"id": f"ORD-{case:07d}", "attributes": {"region": REGIONS[case % len(REGIONS)]}},
            "customer": f"C-{case % 50_000:05d}",
        }
        who = {"resource": MANAGERS[case % len(MANAGERS)]}
        return (at + 800, "business", flow, run_id, "order", ACTIVITIES[i % len(FLOWS)], _text(objects), _text(who))

    def _assignee(self, i: int) -> str:
        return MANAGERS[(i // 100) % len(MANAGERS)]

    def approval_rows(self) -> dict[str, list[Row]]:
        """An approval per waiting run (its task pending) and per 50th completed run (decided)."""
        out: dict[str, list[Row]] = {"approvals": [], "tasks": []}
        plan = _text([{"name": "财务经理", "assignees": MANAGERS[:1], "rule": "any"}])
        for i in range(self.runs):
            status = status_of(i)
            if status != "waiting" and (status != "completed" or i % 50):
                continue
            at, flow, who = self.at(i), FLOWS[i % len(FLOWS)], self._assignee(i)
            is_open = status == "waiting"
            data = _text({"order_no": f"SO-{i:08d}", "amount": f"{(i % 9000) + 100}.00"})
            out["approvals"].append(
                (f"apr_{i:08d}", self.run_id(i), "approve", flow, "sales01", f"订单 SO-{i:08d}", data, plan, 1,
                 "open" if is_open else "approved", at + 100, at + 700)
            )  # fmt: skip
            decided = None if is_open else at + 700
            out["tasks"].append(
                (f"tsk_{i:08d}", f"apr_{i:08d}", 1, who, "pending" if is_open else "decided",
                 None if is_open else "approve", None if is_open else "同意", None, at + 100, None, decided)
            )  # fmt: skip
        return out

    def side_rows(self) -> dict[str, list[Row]]:
        """Users and a token, the sync's records, links and conflicts, feedback and the audit trail."""
        now = self.at(self.runs - 1)
        users = [(m, m, f"{m}@example.cn", '["admin"]' if m == USER else '["approver"]', now) for m in MANAGERS]
        scopes = "read,operate,build,approve,admin"
        token = ("tok_bench_user", USER, "bench", hashlib.sha256(USER_TOKEN.encode()).hexdigest(), scopes, 0)
        records, links = [], []
        for n in range(SYNC_RECORDS):
            data = {"name": f"客户{n:06d}有限公司", "tax_id": f"91310000MA{n:08d}", "phone": f"138{n:08d}"}
            meta = {"crm": {"updated": "2026-11-01T00:00:00+00:00"}}
            records.append((SYNC, f"cus_{n:06d}", data["tax_id"], _text(data), _text(meta), int(n % 500 == 0), 1, now))
            for side in ("crm", "erp"):
                links.append((SYNC, side, str(n + 1), f"cus_{n:06d}", "h" * 16, "h" * 16, None, now))
        conflicts = [
            (f"cfl_{n:05d}", SYNC, f"cus_{n * 300:06d}", "address",
             _text({"crm": f"上海市静安区南京西路{n}号", "erp": f"上海市静安区南京西路{n}弄"}),
             "open" if n >= CONFLICTS - OPEN_CONFLICTS else "resolved",
             None if n >= CONFLICTS - OPEN_CONFLICTS else _text("上海市"), now - (CONFLICTS - n) * 60_000,
             None if n >= CONFLICTS - OPEN_CONFLICTS else now)
            for n in range(CONFLICTS)
        ]  # fmt: skip
        feedback = [
            (f"fbk_{n:05d}", "problem" if n % 3 else "suggestion", FLOWS[n % len(FLOWS)], self.run_id(n * 97), None,
             "这个审批总是在等财务总监", MANAGERS[n % len(MANAGERS)], now - (FEEDBACK - n) * 600_000,
             None if n >= FEEDBACK - OPEN_FEEDBACK else now, None if n >= FEEDBACK - OPEN_FEEDBACK else USER, None)
            for n in range(FEEDBACK)
        ]  # fmt: skip
        audit = [
            (n + 1, self.start_ms + n * 20_000, MANAGERS[n % len(MANAGERS)], "session", "approval.decided",
             f"task:tsk_{n:08d}", "127.0.0.1", "bench", '{"decision":"approve"}', f"{n:064x}", f"{n + 1:064x}")
            for n in range(AUDIT_ENTRIES)
        ]  # fmt: skip
        return {
            "users": users,
            "user_tokens": [token],
            "sync_records": records,
            "sync_links": links,
            "sync_conflicts": conflicts,
            "feedback": feedback,
            "audit_log": audit,
        }


COLUMNS = {
    "events": "id, flow_id, trigger, dedupe_key, body, body_ref, received_ms",
    "runs": "id, flow_id, flow_version, event_id, status, generation, error, created_ms, updated_ms, finished_ms",
    "journal": "run_id, path, attempt, generation, kind, status, input, output, error, started_ms, finished_ms",
    "event_log": "at_ms, kind, flow_id, run_id, path, activity, objects, attributes",
    "approvals": "id, run_id, path, flow_id, requester, subject, data, plan, level, status, created_ms, updated_ms",
    "tasks": "id, approval_id, level, assignee, status, decision, comment, form, created_ms, due_ms, decided_ms",
    "users": "login, display_name, email, roles, updated_ms",
    "user_tokens": "id, login, name, hash, scopes, created_ms",
    "sync_records": "sync_id, canonical_id, match_key, data, meta, deleted, version, updated_ms",
    "sync_links": "sync_id, side, side_key, canonical_id, seen_hash, written_hash, written_at, updated_ms",
    "sync_conflicts": "id, sync_id, canonical_id, field, candidates, status, resolution, created_ms, resolved_ms",
    "feedback": "id, kind, flow_id, run_id, step, body, author, created_ms, closed_ms, closed_by, close_note",
    "audit_log": "seq, at_ms, actor, via, action, object, client, user_agent, detail, prev_hash, hash",
}


def _batches(plan: Plan) -> Iterator[dict[str, list[Row]]]:
    for first in range(0, plan.runs, BATCH):
        yield plan.run_rows(first, min(plan.runs, first + BATCH))
    yield plan.approval_rows()
    yield plan.side_rows()


def fill_sqlite(path: str, plan: Plan) -> None:
    """Write every row into the migrated SQLite store at `path`, then ANALYZE."""
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA synchronous=OFF")
    for batch in _batches(plan):
        for table, rows in batch.items():
            marks = ", ".join("?" for _ in COLUMNS[table].split(","))
            conn.executemany(f"INSERT INTO {table} ({COLUMNS[table]}) VALUES ({marks})", rows)
        conn.commit()
    conn.execute("ANALYZE")
    conn.commit()
    conn.close()


def fill_postgres(url: str, plan: Plan) -> None:
    """Write every row into the migrated PostgreSQL store at `url` by COPY, then VACUUM ANALYZE."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        for batch in _batches(plan):
            with conn.transaction(), conn.cursor() as cur:
                for table, rows in batch.items():
                    with cur.copy(f"COPY {table} ({COLUMNS[table]}) FROM STDIN") as copy:
                        for row in rows:
                            copy.write_row(row)
        conn.execute("VACUUM ANALYZE")
