"""The HTTP interface: webhooks, REST API, health and metrics."""

from __future__ import annotations

from seamflow.api.app import SeamflowApp, WebhookLimits, create_app, hash_token

__all__ = ["SeamflowApp", "WebhookLimits", "create_app", "hash_token"]
