"""The REST API's routers: every route has a snake_case operationId for OpenAPI-driven clients."""

from __future__ import annotations

from seamflow_erp.routes.billing import router as billing_router
from seamflow_erp.routes.orders import router as orders_router
from seamflow_erp.routes.parties import router as parties_router
from seamflow_erp.routes.purchasing import router as purchasing_router

__all__ = ["billing_router", "orders_router", "parties_router", "purchasing_router"]
