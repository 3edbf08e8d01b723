"""What lead to cash achieved in `seamflow demo`, read from the CRM's and the ERP's own databases.

These are the figures a business reader asks for: orders that reached the ERP without anyone
typing them, how long a signed contract waited for its order, payments and shipments that came
back to the CRM, the mails sent, and the fields nobody had to re-type.
"""

from __future__ import annotations

import contextlib
import math
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from seamflow.cli.demo_systems import read_mail

__all__ = ["ORDER_FIELDS", "Facts", "percentile", "read_facts"]

ORDER_FIELDS = {"order": 2, "line": 3, "payment": 1, "shipment": 2}
"""Fields a person would type per order (customer, contract number), per order line (product,
quantity, unit price), per payment (amount received) and per shipment (status, tracking number)."""


@dataclass(frozen=True, slots=True)
class Facts:
    """Lead to cash in numbers, as both systems hold them now."""

    contracts_signed: int
    orders: int
    """ERP sales orders made from CRM contracts (their external_ref is the contract number)."""
    order_lines: int
    waits_s: tuple[float, ...]
    """Per order: seconds from the contract's signature in the CRM to the order in the ERP."""
    payments: int
    """CRM contracts whose payment came back from the ERP (partially or fully paid)."""
    shipments: int
    """CRM contracts marked shipped, with the ERP's tracking number."""
    mails_to_customers: int
    mails_to_operations: int
    """Mails asking sales operations to act."""
    cancelled_for_a_person: int = 0
    """Of those: contracts cancelled in the CRM whose ERP order had shipped (or never existed)."""
    amounts_differing: int = 0
    """Of those: orders whose ERP total differs from the contract's amount."""

    @property
    def fields_not_retyped(self) -> int:
        """The fields a person would have typed from one system into the other (see `ORDER_FIELDS`)."""
        return (
            self.orders * ORDER_FIELDS["order"]
            + self.order_lines * ORDER_FIELDS["line"]
            + self.payments * ORDER_FIELDS["payment"]
            + self.shipments * ORDER_FIELDS["shipment"]
        )


def read_facts(root: Path) -> Facts:
    """Read the facts from `root`'s `crm.db`, `erp.db` and `mail/` (read-only; the systems may be running)."""
    with _read_only(root / "crm.db") as crm:
        signed = {
            str(number): _instant(str(at))
            for number, at in crm.execute("SELECT number, signed_at FROM contracts WHERE signed_at IS NOT NULL")
        }
        payments, shipments = crm.execute(
            "SELECT COALESCE(SUM(payment_status != 'unpaid'), 0), COALESCE(SUM(shipping_status = 'shipped'), 0)"
            " FROM contracts WHERE signed_at IS NOT NULL"
        ).fetchone()
    with _read_only(root / "erp.db") as erp:
        created = {
            str(ref): (_instant(str(at)), int(lines))
            for ref, at, lines in erp.execute(
                "SELECT o.external_ref, o.created_at, COUNT(l.line_no) FROM sales_orders o"
                " LEFT JOIN sales_order_lines l ON l.order_id = o.id"
                " WHERE o.external_ref IS NOT NULL GROUP BY o.id"
            )
        }
    from_contracts = {ref: value for ref, value in created.items() if ref in signed}
    waits = tuple(max(0.0, (at - signed[ref]).total_seconds()) for ref, (at, _) in from_contracts.items())
    subjects = [read_mail(path)[1] for path in sorted((root / "mail").glob("*.eml"))]
    to_operations = [subject for subject in subjects if "需人工处理" in subject]  # the flows' subjects
    return Facts(
        contracts_signed=len(signed),
        orders=len(from_contracts),
        order_lines=sum(lines for _, lines in from_contracts.values()),
        waits_s=waits,
        payments=int(payments),
        shipments=int(shipments),
        mails_to_customers=len(subjects) - len(to_operations),
        mails_to_operations=len(to_operations),
        cancelled_for_a_person=sum("已取消合同" in subject for subject in to_operations),
        amounts_differing=sum("金额不一致" in subject for subject in to_operations),
    )


def percentile(values: Sequence[float], q: float) -> float:
    """The `q` quantile (0..1) of `values`, nearest rank; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered) - 1e-9))
    return ordered[min(rank, len(ordered)) - 1]


@contextlib.contextmanager
def _read_only(path: Path) -> Iterator[sqlite3.Connection]:
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)) as conn:
        yield conn


def _instant(text: str) -> datetime:
    """A time as the CRM (ISO with Z) or the ERP (naive UTC) stores it."""
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return value if value.tzinfo else value.replace(tzinfo=UTC)
