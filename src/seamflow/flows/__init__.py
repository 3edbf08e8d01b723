"""Flow files: the format (spec), loading with positions, validation, expressions, compilation."""

from __future__ import annotations

from seamflow.flows import connector_files, expressions, load, roundtrip, spec, validate
from seamflow.flows.compile import CompiledFlow, CompiledStep, compile_flow
from seamflow.flows.expressions import Template
from seamflow.flows.journal_order import in_flow_order
from seamflow.flows.spec import Duration

__all__ = [
    "CompiledFlow",
    "CompiledStep",
    "Duration",
    "Template",
    "compile_flow",
    "connector_files",
    "expressions",
    "in_flow_order",
    "load",
    "roundtrip",
    "spec",
    "validate",
]
