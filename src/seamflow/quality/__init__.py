"""Data quality: rules and validators for Chinese business data, profiling, resumable migration."""

from __future__ import annotations

from seamflow.quality.rules import Outcome, RuleSet, Violation, load_rules, parse_rules

__all__ = ["Outcome", "RuleSet", "Violation", "load_rules", "parse_rules"]
