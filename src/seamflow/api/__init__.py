"""The HTTP interface: webhooks, REST API, health and metrics."""

from __future__ import annotations

from seamflow.api.app import SeamflowApp, WebhookLimits, create_app
from seamflow.api.dependencies import hash_token
from seamflow.api.operations import create_health_app

__all__ = ["SeamflowApp", "WebhookLimits", "create_app", "create_health_app", "hash_token"]
