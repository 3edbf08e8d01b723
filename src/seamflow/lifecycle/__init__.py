"""Flow lifecycle: trying flows before they go live — rehearsed runs whose effects are captured by a
recording sandbox (the editor's test, flow tests, shadow runs)."""

from __future__ import annotations

from seamflow.lifecycle.live import LiveMirror, live_shadow_json, start_live_shadow
from seamflow.lifecycle.promotion import (
    PROMOTION_FLOW_ID,
    PROMOTION_FLOW_SOURCE,
    approved_promotion,
    check_requester,
    promotion_json,
)
from seamflow.lifecycle.rehearsal import Rehearsal, Stage, StepResult, connections_of, event_of
from seamflow.lifecycle.sandbox import Answer, AnsweredFrom, Answers, Effect, SandboxConnector, parse_fixtures
from seamflow.lifecycle.shadow import ShadowReads, diff_requests, run_shadow, shadow_report
from seamflow.lifecycle.testfile import (
    CaseResult,
    FlowTestCase,
    FlowTestFile,
    check_case,
    load_test_file,
    run_test_file,
)
from seamflow.lifecycle.workbench import Workbench

__all__ = [
    "PROMOTION_FLOW_ID",
    "PROMOTION_FLOW_SOURCE",
    "Answer",
    "AnsweredFrom",
    "Answers",
    "CaseResult",
    "Effect",
    "FlowTestCase",
    "FlowTestFile",
    "LiveMirror",
    "Rehearsal",
    "SandboxConnector",
    "ShadowReads",
    "Stage",
    "StepResult",
    "Workbench",
    "approved_promotion",
    "check_case",
    "check_requester",
    "connections_of",
    "diff_requests",
    "event_of",
    "live_shadow_json",
    "load_test_file",
    "parse_fixtures",
    "promotion_json",
    "run_shadow",
    "run_test_file",
    "shadow_report",
    "start_live_shadow",
]
