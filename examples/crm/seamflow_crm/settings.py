"""How a CRM process is configured: command-line flags, falling back to CRM_* environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from seamflow_crm.webhooks import DeliveryPolicy

__all__ = ["Settings"]


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything a CRM process needs to know."""

    db_path: Path = Path("crm.db")
    """The SQLite file; created with its tables if missing."""
    api_token: str = ""
    """The bearer token every API request must carry (CRM_API_TOKEN)."""
    webhook_urls: tuple[str, ...] = ()
    """Subscribers every event is sent to (CRM_WEBHOOK_URL, comma-separated)."""
    delivery: DeliveryPolicy = field(default_factory=DeliveryPolicy)
    """How webhooks are signed (CRM_WEBHOOK_SECRET) and retried."""

    @staticmethod
    def webhook_urls_from_env() -> tuple[str, ...]:
        """CRM_WEBHOOK_URL split at commas."""
        return tuple(url.strip() for url in os.environ.get("CRM_WEBHOOK_URL", "").split(",") if url.strip())
