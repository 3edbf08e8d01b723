"""Identity resolution: one unified ID and a golden record per member (or customer) across sources.

A resolution file (`identity/members.yaml`) names the sources (a POS export, a web shop's REST list,
the CRM's table), how their columns map to the entity's fields, the deterministic rules (the same
normalised phone, ID number, tax ID or e-mail) and the Fellegi–Sunter comparisons (names with
pinyin and traditional/simplified variants, addresses, e-mails) with their m/u weights. `seamflow
identity resolve` clusters every record with a unified ID that survives re-runs; the `identity.match`
step matches one new record on arrival; a data steward merges and splits with a reason; `explain`
shows each comparison's level and weight. See docs/howto/identity.md.
"""

from __future__ import annotations

from seamflow.identity.cluster import Separation, assign_ids, connect
from seamflow.identity.connector import IdentityConnector
from seamflow.identity.golden import Survivor, golden_record
from seamflow.identity.model import Comparison, Explanation, MatchModel
from seamflow.identity.prepare import Prepared, Preparer, name_pinyin
from seamflow.identity.resolver import MatchResult, Resolver, ResolveReport, settings_of
from seamflow.identity.spec import FieldKind, Resolution, Survivorship, load_resolution, parse_resolution
from seamflow.identity.steward import Steward, StewardResult, member_json
from seamflow.identity.writeback import write_back

__all__ = [
    "Comparison",
    "Explanation",
    "FieldKind",
    "IdentityConnector",
    "MatchModel",
    "MatchResult",
    "Prepared",
    "Preparer",
    "Resolution",
    "ResolveReport",
    "Resolver",
    "Separation",
    "Steward",
    "StewardResult",
    "Survivor",
    "Survivorship",
    "assign_ids",
    "connect",
    "golden_record",
    "load_resolution",
    "member_json",
    "name_pinyin",
    "parse_resolution",
    "settings_of",
    "write_back",
]
