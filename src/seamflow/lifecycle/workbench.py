"""The workbench: where a flow that is not live yet is checked and tried, with the project's connections.

The console's editor sends a flow's text and an event (`POST /api/v1/flows/test`); the workbench
validates the text as `seamflow flow validate` would and rehearses one run of it on a stage.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from seamflow import store
from seamflow.flows import CompiledFlow, compile_flow, validate
from seamflow.ids import Json
from seamflow.lifecycle.rehearsal import Rehearsal, Stage, event_of
from seamflow.lifecycle.sandbox import Answers, parse_fixtures
from seamflow.lifecycle.shadow import ShadowReads, run_shadow

__all__ = ["Workbench"]


class Workbench:
    """Checks and tries flow texts against a project's connections.

    Args:
        connections: the project's `connections.yaml` (read on each check, as a reload would), or None.
        context: `env` and `secrets` for templates, those of the serving process.
        flow_ids: the ids of the flows served now, for `call` steps.
    """

    def __init__(
        self,
        connections: Path | None,
        *,
        context: Mapping[str, Any],
        flow_ids: Callable[[], Collection[str]] = frozenset,
    ) -> None:
        self._connections = connections
        self._context = context
        self._flow_ids = flow_ids

    def check(self, source: str, filename: str = "<source>") -> CompiledFlow:
        """The flow of `source`, validated and compiled.

        Raises:
            errors.FlowInvalid: every problem, each with `filename:line:column`.
        """
        loaded = validate.validate_flow_text(source, filename, self._connections, flow_ids=self._flow_ids())
        return compile_flow(loaded.spec, version=loaded.version, source=source, path=filename)

    async def shadow(self, db: ShadowReads, source: str, *, runs: int = 20) -> list[store.ShadowResult]:
        """Rehearse the candidate of `source` on the latest live runs of its flow; keep and return the results.

        Raises:
            errors.FlowInvalid: the candidate's text has problems.
            errors.NotFound: the flow has no finished run to replay.
        """
        return await run_shadow(db, self.check(source, "<candidate>"), self._context, runs=runs)

    async def test(self, source: str, event: Json, fixtures: Json = None) -> Rehearsal:
        """Rehearse one run of the flow of `source` for `event`, calls answered from `fixtures`.

        Raises:
            errors.FlowInvalid: the flow's text has problems.
            errors.InvalidInput: the event or the fixtures are not of their documented form.
        """
        flow = self.check(source)
        started = event_of(flow.spec, event)
        answers = Answers(fixtures=parse_fixtures(fixtures))
        async with Stage.open(self._context) as stage:
            return await stage.rehearse(flow, started, answers)
