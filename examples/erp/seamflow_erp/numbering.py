"""Document numbers the ERP assigns: SO-20261125-0001 for orders, INV-20261125-0001 for invoices, C000123 for customers.

Dates are the company's local date (Asia/Shanghai). Writers are serialized, so counting is race-free.
"""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Column, Table, func, select
from sqlalchemy.engine import Connection

__all__ = ["COMPANY_TZ", "customer_code", "next_document_no"]

COMPANY_TZ = ZoneInfo("Asia/Shanghai")


def customer_code(customer_id: int) -> str:
    return f"C{customer_id:06d}"


def next_document_no(conn: Connection, table: Table, column: Column[str], prefix: str, now: datetime) -> str:
    """The next number of the day: `<prefix>-<yyyymmdd>-<nnnn>` (the sequence restarts each local day)."""
    day = f"{prefix}-{now.astimezone(COMPANY_TZ):%Y%m%d}-"
    used = conn.execute(select(func.count()).select_from(table).where(column.startswith(day, autoescape=True)))
    return f"{day}{used.scalar_one() + 1:04d}"
