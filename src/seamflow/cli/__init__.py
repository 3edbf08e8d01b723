"""The `seamflow` command line."""

from __future__ import annotations

from seamflow.cli.commands import main

__all__ = ["main"]
