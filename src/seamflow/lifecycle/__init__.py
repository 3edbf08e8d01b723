"""Flow lifecycle: trying flows before they go live — rehearsed runs whose effects are captured by a
recording sandbox (the editor's test, flow tests, shadow runs)."""

from __future__ import annotations

from seamflow.lifecycle.rehearsal import Rehearsal, Stage, StepResult, connections_of, event_of
from seamflow.lifecycle.sandbox import Answer, AnsweredFrom, Answers, Effect, SandboxConnector, parse_fixtures
from seamflow.lifecycle.workbench import Workbench

__all__ = [
    "Answer",
    "AnsweredFrom",
    "Answers",
    "Effect",
    "Rehearsal",
    "SandboxConnector",
    "Stage",
    "StepResult",
    "Workbench",
    "connections_of",
    "event_of",
    "parse_fixtures",
]
