"""Data quality: rules and validators for Chinese business data, profiling, resumable migration.

Rule files (`rules/*.yaml`) name a type and constraints per field; the validators normalise what
people type (phones to E.164, amounts to Decimal, dates to ISO) and say what is wrong. Migrations
(`seamflow migrate`) move rows from a file or a query to a table or a connector action in
batches, with a checkpoint per batch and a quarantine for bad rows.
"""

from __future__ import annotations

from seamflow.quality.assembly import load_references, open_migration
from seamflow.quality.connector import QualityConnector
from seamflow.quality.mapping import Mapping, load_mapping
from seamflow.quality.migration import Migration, MigrationOptions, MigrationReport, ResubmitReport
from seamflow.quality.profile import ColumnProfile, Profile, profile_table
from seamflow.quality.report import profile_html, profile_text
from seamflow.quality.rules import BatchOutcome, Outcome, RuleSet, Violation, load_rules, parse_rules
from seamflow.quality.sources import Table, detect_encoding, open_file, open_query
from seamflow.quality.validators import VALIDATORS

__all__ = [
    "VALIDATORS",
    "BatchOutcome",
    "ColumnProfile",
    "Mapping",
    "Migration",
    "MigrationOptions",
    "MigrationReport",
    "Outcome",
    "Profile",
    "QualityConnector",
    "ResubmitReport",
    "RuleSet",
    "Table",
    "Violation",
    "detect_encoding",
    "load_mapping",
    "load_references",
    "load_rules",
    "open_file",
    "open_migration",
    "open_query",
    "parse_rules",
    "profile_html",
    "profile_table",
    "profile_text",
]
