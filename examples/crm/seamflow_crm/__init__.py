"""Seamflow's example CRM: customers, contacts, opportunities and contracts, with signed, durable webhooks.

It is the "CRM" of the lead-to-cash demo (sign a contract here → Seamflow creates the sales
order in the ERP → payment and shipping are written back here), and a stand-alone application:
it does not import seamflow.
"""

from __future__ import annotations

from seamflow_crm.app import create_app
from seamflow_crm.settings import Settings
from seamflow_crm.webhooks import DeliveryPolicy, sign

__all__ = ["DeliveryPolicy", "Settings", "create_app", "sign"]
