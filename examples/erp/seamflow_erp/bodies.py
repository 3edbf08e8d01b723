"""Request and response bodies of the REST API. Amounts are decimal strings ("1299.00"), never floats."""

from __future__ import annotations

import re
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from seamflow_erp.identifiers import is_mainland_phone, is_unified_credit_code

__all__ = [
    "CancelRequest",
    "Change",
    "ChangePage",
    "Customer",
    "CustomerIn",
    "CustomerPage",
    "CustomerPatch",
    "Invoice",
    "InvoiceIn",
    "InvoicePage",
    "OrderIn",
    "OrderLine",
    "OrderLineIn",
    "OrderStatus",
    "Payment",
    "PaymentIn",
    "PaymentMethod",
    "PaymentPage",
    "PaymentStatus",
    "Product",
    "ProductPage",
    "SalesOrder",
    "SalesOrderPage",
    "ShipRequest",
]

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


def _phone(value: str | None) -> str | None:
    if value is not None and not is_mainland_phone(value):
        raise ValueError("expected a mainland mobile number like 13800138000 or a landline like 021-62345678")
    return value


def _tax_id(value: str | None) -> str | None:
    if value is not None and not is_unified_credit_code(value):
        raise ValueError("expected an 18-character unified social credit code with a valid check character")
    return value


def _email(value: str | None) -> str | None:
    if value is not None and not _EMAIL.fullmatch(value):
        raise ValueError("expected an e-mail address like name@example.com")
    return value


Phone = Annotated[str | None, AfterValidator(_phone)]
TaxId = Annotated[str | None, AfterValidator(_tax_id)]
Email = Annotated[str | None, AfterValidator(_email)]
Money = Annotated[Decimal, Field(max_digits=14, decimal_places=2, ge=0)]
PositiveMoney = Annotated[Decimal, Field(max_digits=14, decimal_places=2, gt=0)]
CustomerCode = Annotated[str, Field(pattern=r"^[A-Z0-9][A-Z0-9-]{0,15}$")]
PaymentMethod = Literal["bank_transfer", "alipay", "wechat_pay"]
PaymentStatus = Literal["unpaid", "partially_paid", "paid"]
OrderStatus = Literal["pending_review", "approved", "shipped", "cancelled"]


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class CustomerPatch(_In):
    """Fields to change on a customer; omitted fields stay as they are."""

    name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    phone: Phone = None
    email: Email = None
    tax_id: TaxId = None
    address: Annotated[str, Field(max_length=500)] | None = None
    credit_limit: Money | None = None
    active: bool | None = None


class CustomerIn(CustomerPatch):
    """A new customer (or the full state for an upsert). `code` is assigned (C000123) when omitted."""

    code: CustomerCode | None = None
    name: Annotated[str, Field(min_length=1, max_length=200)]  # required here


class Customer(BaseModel):
    id: int
    code: str
    name: str
    phone: str | None
    email: str | None
    tax_id: str | None
    address: str | None
    credit_limit: Decimal | None = Field(description="null: no credit limit")
    active: bool
    created_at: datetime
    updated_at: datetime
    row_version: int


class Product(BaseModel):
    sku: str
    name: str
    unit: str
    price: Decimal
    active: bool
    updated_at: datetime


class OrderLineIn(_In):
    sku: Annotated[str, Field(min_length=1, max_length=32)]
    qty: Annotated[int, Field(gt=0, le=1_000_000)]
    unit_price: Annotated[Decimal, Field(max_digits=12, decimal_places=2, ge=0)] | None = Field(
        default=None, description="defaults to the product's list price"
    )


class OrderIn(_In):
    """A new sales order for `customer_id` or `customer_code`; a repeated `external_ref` returns the existing order."""

    customer_id: int | None = None
    customer_code: str | None = None
    external_ref: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    currency: Literal["CNY"] = "CNY"
    note: Annotated[str, Field(max_length=2000)] | None = None
    lines: Annotated[list[OrderLineIn], Field(min_length=1, max_length=500)]


class OrderLine(BaseModel):
    line_no: int
    sku: str
    qty: int
    unit_price: Decimal
    amount: Decimal


class SalesOrder(BaseModel):
    id: int
    order_no: str
    customer_id: int
    customer_code: str
    external_ref: str | None
    status: OrderStatus
    total: Decimal
    currency: str
    note: str | None
    carrier: str | None
    tracking_no: str | None
    cancel_reason: str | None
    invoiced_total: Decimal
    paid_total: Decimal
    payment_status: PaymentStatus
    created_at: datetime
    approved_at: datetime | None
    shipped_at: datetime | None
    cancelled_at: datetime | None
    updated_at: datetime
    lines: list[OrderLine]


class ShipRequest(_In):
    carrier: Annotated[str, Field(min_length=1, max_length=64)]
    tracking_no: Annotated[str, Field(min_length=1, max_length=64)]


class CancelRequest(_In):
    reason: Annotated[str, Field(max_length=2000)] | None = None


class InvoiceIn(_In):
    amount: PositiveMoney | None = Field(default=None, description="defaults to the order total not yet invoiced")


class Invoice(BaseModel):
    id: int
    invoice_no: str
    order_id: int
    amount: Decimal
    issued_at: datetime
    updated_at: datetime


class PaymentIn(_In):
    """A received payment, for an order or an invoice (give exactly one)."""

    order_id: int | None = None
    invoice_id: int | None = None
    amount: PositiveMoney
    method: PaymentMethod = Field(description="bank_transfer (银行转账), alipay (支付宝), wechat_pay (微信支付)")
    received_at: datetime | None = Field(default=None, description="with a UTC offset; defaults to now")
    reference: Annotated[str, Field(max_length=64)] | None = Field(default=None, description="bank or wallet reference")


class Payment(BaseModel):
    id: int
    order_id: int
    invoice_id: int | None
    amount: Decimal
    method: PaymentMethod
    received_at: datetime
    reference: str | None
    created_at: datetime
    updated_at: datetime


class Change(BaseModel):
    id: int
    entity: Literal["customer", "product", "sales_order", "invoice", "payment"]
    entity_id: str
    op: str
    occurred_at: datetime


class _Page(BaseModel):
    next_cursor: str | None = Field(description="pass as `cursor` to continue; stays valid after the last page")
    has_more: bool


class CustomerPage(_Page):
    items: list[Customer]


class ProductPage(_Page):
    items: list[Product]


class SalesOrderPage(_Page):
    items: list[SalesOrder]


class InvoicePage(_Page):
    items: list[Invoice]


class PaymentPage(_Page):
    items: list[Payment]


class ChangePage(BaseModel):
    items: list[Change]
    next_after_id: int = Field(description="pass as `after_id` to continue")
    has_more: bool


class PurchaseOrderIn(_In):
    """A purchase order for an approved purchase request; a repeated `request_no` returns the existing order."""

    request_no: Annotated[str, Field(min_length=1, max_length=64)]
    supplier: Annotated[str, Field(min_length=1, max_length=200)]
    item: Annotated[str, Field(min_length=1, max_length=500)]
    amount: PositiveMoney
    currency: Literal["CNY"] = "CNY"
    buyer: Annotated[str, Field(min_length=1, max_length=64, description="the buyer's login")]
    approved_by: Annotated[str, Field(max_length=500)] = ""


class PurchaseOrder(BaseModel):
    id: int
    po_no: str
    request_no: str
    supplier: str
    item: str
    amount: Decimal
    currency: str
    buyer: str
    approved_by: str
    status: str
    created_at: datetime
