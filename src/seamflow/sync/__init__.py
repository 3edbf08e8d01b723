"""Record sync: one object type kept consistent between two systems through a canonical model.

A sync is flows plus a crosswalk (DESIGN.md): generated flows notice changes on each side and
call the built-in `sync.apply` step, which merges by ownership and policy, writes the other
side and remembers what it wrote so the echo does not bounce. See docs/howto/sync.md.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from seamflow.sync.load import SyncProject, generated_flows, load_project
from seamflow.sync.model import FieldType, Model, ModelField
from seamflow.sync.spec import Sync

if TYPE_CHECKING:
    from seamflow.sync.bulk_load import LoadProgress
    from seamflow.sync.check import CheckReport
    from seamflow.sync.service import SyncService

_RUNTIME = {"LoadProgress": "bulk_load", "CheckReport": "check", "SyncService": "service"}
"""Names that need the engine and the store: imported on first use, so `flow validate` (which only
reads sync files) does not load them."""


def __getattr__(name: str) -> object:
    module = _RUNTIME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"seamflow.sync.{module}"), name)


__all__ = [
    "CheckReport",
    "FieldType",
    "LoadProgress",
    "Model",
    "ModelField",
    "Sync",
    "SyncProject",
    "SyncService",
    "generated_flows",
    "load_project",
]
