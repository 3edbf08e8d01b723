"""Flow files: the format (spec), loading with positions, validation, expressions, compilation."""

from __future__ import annotations

from seamflow.flows import expressions, load, spec, validate
from seamflow.flows.compile import CompiledFlow, CompiledStep, compile_flow

__all__ = [
    "CompiledFlow",
    "CompiledStep",
    "compile_flow",
    "expressions",
    "load",
    "spec",
    "validate",
]
