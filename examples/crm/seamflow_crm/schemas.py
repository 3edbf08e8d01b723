"""The CRM's records as the REST API and the webhooks show them (pydantic models, the OpenAPI schemas).

Money is a decimal string in CNY with two decimals ("199.00"), never a number: a JSON number
would be read as a float by many clients.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from seamflow_crm import uscc

__all__ = [
    "Contact",
    "ContactCreate",
    "ContactList",
    "ContactUpdate",
    "Contract",
    "ContractCreate",
    "ContractLine",
    "ContractLineOut",
    "ContractPage",
    "ContractStatus",
    "ContractUpdate",
    "Customer",
    "CustomerCreate",
    "CustomerPage",
    "CustomerStatus",
    "CustomerSummary",
    "CustomerUpdate",
    "Delivery",
    "DeliveryList",
    "Event",
    "EventPage",
    "Money",
    "Opportunity",
    "OpportunityCreate",
    "OpportunityPage",
    "OpportunityStage",
    "OpportunityUpdate",
    "PaymentStatus",
    "ShippingStatus",
    "Subscription",
    "SubscriptionCreate",
    "SubscriptionList",
    "to_money",
]

CENT = Decimal("0.01")


def to_money(value: Decimal | str) -> str:
    """A money amount in its canonical text form, two decimals: "199" → "199.00"."""
    return str(Decimal(value).quantize(CENT))


def _check_uscc(value: str) -> str:
    if not uscc.is_valid(value):
        raise ValueError(
            "not a valid unified social credit code (统一社会信用代码): expected 18 characters "
            "(digits and upper-case letters without I, O, S, V, Z) with a correct check character"
        )
    return value


Money = Annotated[
    str,
    StringConstraints(pattern=r"^\d{1,13}(\.\d{1,2})?$"),
    AfterValidator(to_money),
    Field(description='An amount in CNY as a decimal string, at most two decimals: "199.00"', examples=["199.00"]),
]
Phone = Annotated[
    str,
    StringConstraints(pattern=r"^1[3-9]\d{9}$"),
    Field(description="A mainland China mobile number, 11 digits", examples=["13812345678"]),
]
Email = Annotated[
    str,
    StringConstraints(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$", max_length=254),
    Field(examples=["sales@example.cn"]),
]
TaxId = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9A-Z]{18}$"),
    AfterValidator(_check_uscc),
    Field(description="Unified social credit code (统一社会信用代码), 18 characters", examples=["91310115MA1K3YJ27X"]),
]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]


class _Input(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CustomerStatus(StrEnum):
    """Whether new contracts may be signed with a customer."""

    ACTIVE = "active"
    INACTIVE = "inactive"


class CustomerCreate(_Input):
    """A new customer (a company the sales team sells to)."""

    name: Name
    phone: Phone | None = None
    email: Email | None = None
    tax_id: TaxId | None = None
    address: Text | None = None
    credit_limit: Money = "0.00"
    status: CustomerStatus = CustomerStatus.ACTIVE


class CustomerUpdate(_Input):
    """Fields to change; `null` clears an optional field. `version` (or `If-Match`) guards against lost updates."""

    name: Name | None = None
    phone: Phone | None = None
    email: Email | None = None
    tax_id: TaxId | None = None
    address: Text | None = None
    credit_limit: Money | None = None
    status: CustomerStatus | None = None
    version: int | None = Field(None, description="The version this change is based on; 412 if it is stale")


class Customer(BaseModel):
    """A customer as stored; `version` grows by one with every change."""

    id: int
    name: str
    phone: str | None
    email: str | None
    tax_id: str | None
    address: str | None
    credit_limit: str
    status: CustomerStatus
    created_at: datetime
    updated_at: datetime
    version: int


class CustomerSummary(BaseModel):
    """The customer fields a contract carries, so a subscriber needs no second request."""

    id: int
    name: str
    phone: str | None
    email: str | None
    tax_id: str | None
    address: str | None


class CustomerPage(BaseModel):
    """One page of customers, ordered by (updated_at, id)."""

    items: list[Customer]
    page: int
    per_page: int
    total: int


class ContactCreate(_Input):
    """A new contact person at a customer."""

    name: Name
    title: Text | None = None
    phone: Phone | None = None
    email: Email | None = None
    is_primary: bool = False


class ContactUpdate(_Input):
    """Contact fields to change."""

    name: Name | None = None
    title: Text | None = None
    phone: Phone | None = None
    email: Email | None = None
    is_primary: bool | None = None
    version: int | None = None


class Contact(BaseModel):
    """A contact person at a customer."""

    id: int
    customer_id: int
    name: str
    title: str | None
    phone: str | None
    email: str | None
    is_primary: bool
    created_at: datetime
    updated_at: datetime
    version: int


class ContactList(BaseModel):
    """The contacts of one customer."""

    items: list[Contact]


class OpportunityStage(StrEnum):
    """Where a sales opportunity stands."""

    LEAD = "lead"
    QUALIFIED = "qualified"
    PROPOSAL = "proposal"
    NEGOTIATION = "negotiation"
    WON = "won"
    LOST = "lost"


class OpportunityCreate(_Input):
    """A new sales opportunity."""

    customer_id: int
    title: Name
    stage: OpportunityStage = OpportunityStage.LEAD
    amount: Money = "0.00"
    expected_close_date: date | None = None
    owner: Text | None = None


class OpportunityUpdate(_Input):
    """Opportunity fields to change."""

    title: Name | None = None
    stage: OpportunityStage | None = None
    amount: Money | None = None
    expected_close_date: date | None = None
    owner: Text | None = None
    version: int | None = None


class Opportunity(BaseModel):
    """A sales opportunity."""

    id: int
    customer_id: int
    title: str
    stage: OpportunityStage
    amount: str
    expected_close_date: date | None
    owner: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class OpportunityPage(BaseModel):
    """One page of opportunities, ordered by (updated_at, id)."""

    items: list[Opportunity]
    page: int
    per_page: int
    total: int


class ContractStatus(StrEnum):
    """A contract's life: draft → signed → cancelled (a draft may also be cancelled)."""

    DRAFT = "draft"
    SIGNED = "signed"
    CANCELLED = "cancelled"


class PaymentStatus(StrEnum):
    """How much of a contract has been paid, as the finance system reports it."""

    UNPAID = "unpaid"
    PARTIAL = "partial"
    PAID = "paid"


class ShippingStatus(StrEnum):
    """How far the goods of a contract have been shipped, as the ERP reports it."""

    NOT_SHIPPED = "not_shipped"
    PARTIALLY_SHIPPED = "partially_shipped"
    SHIPPED = "shipped"
    DELIVERED = "delivered"


class ContractLine(_Input):
    """One product line of a contract."""

    sku: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    name: Name
    qty: int = Field(ge=1, le=1_000_000)
    unit_price: Money


class ContractLineOut(BaseModel):
    """A contract line with its amount (qty × unit_price)."""

    sku: str
    name: str
    qty: int
    unit_price: str
    amount: str


class ContractCreate(_Input):
    """A new draft contract; its amount is computed from the lines."""

    customer_id: int
    opportunity_id: int | None = None
    title: Text | None = None
    lines: list[ContractLine] = Field(min_length=1, max_length=500)


class ContractUpdate(_Input):
    """Contract fields to change.

    While a contract is a draft, `customer_id`, `opportunity_id`, `title` and `lines` may
    change. The fields the integration writes back (`erp_order_no`, payment and shipping) may
    change in any status but draft-only fields may not once the contract is signed.
    """

    customer_id: int | None = None
    opportunity_id: int | None = None
    title: Text | None = None
    lines: list[ContractLine] | None = Field(None, min_length=1, max_length=500)
    erp_order_no: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] | None = None
    payment_status: PaymentStatus | None = None
    amount_received: Money | None = None
    shipping_status: ShippingStatus | None = None
    tracking_no: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None
    version: int | None = None


class Contract(BaseModel):
    """A sales contract (销售合同) with its lines, its status and what the integration wrote back."""

    id: int
    number: str = Field(examples=["HT-2026-000123"])
    customer_id: int
    customer: CustomerSummary
    opportunity_id: int | None
    title: str | None
    lines: list[ContractLineOut]
    amount: str
    currency: str
    status: ContractStatus
    signed_at: datetime | None
    cancelled_at: datetime | None
    erp_order_no: str | None
    payment_status: PaymentStatus
    amount_received: str
    shipping_status: ShippingStatus
    tracking_no: str | None
    created_at: datetime
    updated_at: datetime
    version: int


class ContractPage(BaseModel):
    """One page of contracts, ordered by (updated_at, id)."""

    items: list[Contract]
    page: int
    per_page: int
    total: int


class SubscriptionCreate(_Input):
    """A webhook subscriber: the URL every matching event is POSTed to."""

    url: Annotated[str, StringConstraints(pattern=r"^https?://\S+$", max_length=2000)]
    events: list[Annotated[str, StringConstraints(pattern=r"^(\*|[a-z_]+\.(\*|[a-z_]+))$")]] = Field(
        default_factory=lambda: ["*"], min_length=1, description='Event types, "contract.*" or "*" for all'
    )
    secret: Annotated[str, StringConstraints(min_length=16, max_length=200)] | None = Field(
        None, description="HMAC secret for this subscriber (never returned); default CRM_WEBHOOK_SECRET"
    )


class Subscription(BaseModel):
    """A webhook subscriber; `source` is `env` for CRM_WEBHOOK_URL, `api` otherwise."""

    id: int
    url: str
    events: list[str]
    source: str
    is_active: bool
    has_own_secret: bool
    created_at: datetime


class SubscriptionList(BaseModel):
    """All webhook subscribers."""

    items: list[Subscription]


class Delivery(BaseModel):
    """One event on its way to one subscriber."""

    id: int
    event_id: str
    event: str
    subscription_id: int
    url: str
    status: str = Field(description="pending, delivered or failed (gave up; redeliver to retry)")
    attempts: int
    next_attempt_at: datetime
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None


class DeliveryList(BaseModel):
    """Webhook deliveries, newest first."""

    items: list[Delivery]


class Event(BaseModel):
    """A change, exactly as webhooks deliver it (also readable from the `/events` feed)."""

    event: str = Field(examples=["contract.signed"])
    id: str = Field(description="The event id, also sent as the Idempotency-Key header")
    occurred_at: datetime
    data: dict[str, object]
    origin: str | None = Field(description="The X-Origin header of the request that caused the change")


class EventPage(BaseModel):
    """Events after a sequence number, oldest first; pass `next_after` as `after` to read on."""

    items: list[Event]
    next_after: int
