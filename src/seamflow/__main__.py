"""`python -m seamflow` is the `seamflow` command."""

from __future__ import annotations

from seamflow.cli import main

main()
