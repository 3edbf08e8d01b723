"""Seamflow's example ERP: a small trading-company ERP (customers, products, sales orders, invoices,
payments, a changelog) with a REST API and a documented schema, for the lead-to-cash demo."""

from __future__ import annotations

from seamflow_erp.app import create_app
from seamflow_erp.database import Database
from seamflow_erp.operator import OperatorOptions
from seamflow_erp.schema import metadata
from seamflow_erp.seed import seed

__all__ = ["Database", "OperatorOptions", "create_app", "metadata", "seed"]
