"""The HTTP interface: webhooks, REST API, health and metrics."""

from __future__ import annotations

from seamflow.api.app import SeamflowApp, WebhookLimits, create_app
from seamflow.api.dependencies import hash_token
from seamflow.api.feedback import feedback_json
from seamflow.api.operations import create_health_app, create_metrics_app
from seamflow.api.read_timeouts import ReadTimeouts, guarded_http_protocol

__all__ = [
    "ReadTimeouts",
    "SeamflowApp",
    "WebhookLimits",
    "create_app",
    "create_health_app",
    "create_metrics_app",
    "feedback_json",
    "guarded_http_protocol",
    "hash_token",
]
