"""A simulated back office for demos: approves pending orders, collects payment and ships, after random delays.

Off by default (`--operator`). It acts through the same functions as the REST API, so every step
lands in `changes` and bumps `updated_at` exactly as a person using the ERP would.
"""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from seamflow_erp import billing, bodies, orders, schema
from seamflow_erp.database import Database, Tx
from seamflow_erp.problems import Problem

__all__ = ["Operator", "OperatorOptions"]

log = logging.getLogger("seamflow_erp.operator")
CARRIERS = ("顺丰速运", "京东物流", "中通快递", "圆通速递")
METHODS: tuple[bodies.PaymentMethod, ...] = ("bank_transfer", "alipay", "wechat_pay")


@dataclass(frozen=True, slots=True)
class OperatorOptions:
    min_delay: timedelta = timedelta(seconds=2)
    """Shortest wait between an order's steps."""
    max_delay: timedelta = timedelta(seconds=10)
    """Longest wait between an order's steps."""
    poll_interval: timedelta = timedelta(seconds=0.5)
    """How often the operator looks for work."""
    seed: int | None = None
    """Seed for the random delays and choices (None: different each run)."""


@dataclass
class Operator:
    db: Database
    options: OperatorOptions
    _due: dict[tuple[int, str], datetime] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._random = random.Random(self.options.seed)

    async def run(self) -> None:
        """Work until cancelled; a failing step is logged and tried again later."""
        while True:
            try:
                await asyncio.to_thread(self.work_once)
            except Exception:  # the operator is a boundary: keep serving, the log says what failed
                log.exception("operator step failed")
            await asyncio.sleep(self.options.poll_interval.total_seconds())

    def _is_due(self, order_id: int, step: str, since: datetime) -> bool:
        span = (self.options.max_delay - self.options.min_delay).total_seconds()
        due = self._due.setdefault(
            (order_id, step), since + self.options.min_delay + timedelta(seconds=self._random.uniform(0, span))
        )
        return datetime.now(UTC) >= due

    def work_once(self) -> None:
        """One pass: each order whose delay has passed moves one step."""
        so = schema.sales_orders
        with self.db.read() as conn:
            open_orders = conn.execute(
                select(so.c.id, so.c.status, so.c.updated_at)
                .where(so.c.status.in_(("pending_review", "approved")))
                .order_by(so.c.id)
                .limit(200)
            ).all()
        for row in open_orders:
            step = "approve" if row.status == "pending_review" else "pay_or_ship"
            if self._is_due(row.id, step, row.updated_at):
                self._advance(row.id, row.status)

    def _advance(self, order_id: int, status: str) -> None:
        try:
            with self.db.write() as tx:
                if status == "pending_review":
                    orders.approve_order(tx, order_id)
                    return
                order = orders.get_order(tx.conn, order_id)
                if order.payment_status != "paid":
                    self._collect(tx, order)
                else:
                    orders.ship_order(
                        tx, order_id, self._random.choice(CARRIERS), f"SF{self._random.randrange(10**11, 10**12)}"
                    )
        except Problem as problem:
            log.info("operator left order %s as it is: %s", order_id, problem.detail)
        self._due.pop((order_id, "approve" if status == "pending_review" else "pay_or_ship"), None)

    def _collect(self, tx: Tx, order: bodies.SalesOrder) -> None:
        invoice_id = None
        if order.invoiced_total < order.total:
            invoice_id = billing.issue_invoice(tx, order.id, None)
        billing.record_payment(
            tx,
            bodies.PaymentIn(
                order_id=order.id,
                invoice_id=invoice_id,
                amount=order.total - order.paid_total,
                method=self._random.choice(METHODS),
                reference=f"OP{self._random.randrange(10**9, 10**10)}",
            ),
            idempotency_key=f"operator:{order.id}:{order.paid_total}",
        )
