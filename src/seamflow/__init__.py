"""Seamflow: durable flows that move records between business systems."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
