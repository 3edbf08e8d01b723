"""Record sync: one object type kept consistent between two systems through a canonical model.

A sync is flows plus a crosswalk (DESIGN.md): generated flows notice changes on each side and
call the built-in `sync.apply` step, which merges by ownership and policy, writes the other
side and remembers what it wrote so the echo does not bounce. See docs/howto/sync.md.
"""

from __future__ import annotations

from seamflow.sync.bulk_load import LoadProgress
from seamflow.sync.check import CheckReport
from seamflow.sync.load import SyncProject, generated_flows, load_project
from seamflow.sync.model import FieldType, Model, ModelField
from seamflow.sync.service import SyncService
from seamflow.sync.spec import Sync

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
