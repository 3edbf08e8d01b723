"""Local stand-ins for the systems Seamflow talks to, shared by tests and benchmarks."""

from __future__ import annotations
