"""Flow-test files: hand-written or recorded events run through a flow with its calls answered from
fixtures, and the effects asserted — kept in git beside the flows (`flow-tests/*.yaml`).

```yaml
flow: contract-to-erp
secrets: {erp_token: test-token}          # values for `secrets.*` (CI has none of the real ones)
fixtures: {customer: {answer: {status: 200, body: {id: ERP-C-9}}}}   # for every case
cases:
  - name: a signed contract becomes a sales order
    event: {body: {contract_id: HT-2026-0042, amount: "12800.50"}}   # or event_file: events/ht-42.json
    fixtures: {erp.post: {answer: {status: 201, body: {number: SO-1}}}}  # over the file's
    expect:
      outcome: completed
      effects:                              # every call, in order; `request` is matched as a subset
        - {call: erp.post, step: customer, request: {json: {external_id: C-77}}}
        - {call: erp.post, request: {json: {amount_cents: 1280050}}}
      steps: {done: {output: {order_no: SO-1}}}   # outputs, matched as subsets
```
A mismatch names the line of the expectation: `flow-tests/contract.yaml:14:28
cases[0].expect.effects[1].request.json.amount_cents: expected 1280050, got 1280000`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from seamflow import codec, engine, errors
from seamflow.flows import CompiledFlow, expressions, load
from seamflow.ids import Json
from seamflow.lifecycle.rehearsal import Rehearsal, Stage, event_of
from seamflow.lifecycle.sandbox import Answer, Answers, parse_fixtures

__all__ = ["CaseResult", "FlowTestCase", "FlowTestFile", "check_case", "load_test_file", "run_test_file"]

_FILE_KEYS = {"flow", "secrets", "fixtures", "cases"}
_CASE_KEYS = {"name", "event", "event_file", "fixtures", "expect"}
_EXPECT_KEYS = {"outcome", "effects", "steps"}
_OUTCOMES = ("completed", "failed", "waiting", "ignored")

_Refuse = Callable[[Sequence[str | int], str, str], None]
"""Collects a problem: where in the file, what was found, what was expected."""
_Differ = Callable[[tuple[str | int, ...], object, object], None]
"""Collects a mismatch: where the expectation is, what it expects, what the run did."""


@dataclass(frozen=True, slots=True)
class FlowTestCase:
    """One case: an event, its fixtures, and what the run must do (`expect`, with its positions)."""

    name: str
    index: int
    event: Json
    fixtures: Mapping[str, Answer]
    expect: Mapping[str, Json]
    where: errors.Location


@dataclass(frozen=True, slots=True)
class FlowTestFile:
    """A flow-test file: the flow it tests, secret values for it, and its cases."""

    path: Path
    flow_id: str
    secrets: Mapping[str, str]
    cases: tuple[FlowTestCase, ...]
    source_map: load.SourceMap = field(repr=False)


def load_test_file(path: Path, shown_as: str | None = None) -> FlowTestFile:
    """Read and check a flow-test file.

    Args:
        path: the file.
        shown_as: the name problems carry (default: `path`).

    Raises:
        errors.FlowInvalid: every problem of the file's shape, each with file:line:column.
    """
    name = shown_as or str(path)
    data, source_map = load.parse_yaml(load.read_source(path), name)
    problems: list[errors.Problem] = []

    def refuse(where: Sequence[str | int], found: str, expected: str) -> None:
        problems.append(errors.Problem(source_map.locate(where), found, expected))

    if not isinstance(data, dict):
        refuse((), f"got {type(data).__name__}", "a mapping with flow and cases")
        raise errors.FlowInvalid(problems)
    for key in sorted(set(data) - _FILE_KEYS):
        refuse((key,), f"unknown key {key!r}", f"one of {', '.join(sorted(_FILE_KEYS))}")
    flow_id = data.get("flow")
    if not isinstance(flow_id, str):
        refuse(("flow",), "no flow id", "flow: the id of the flow under test")
    raw_secrets = data.get("secrets") or {}
    if not isinstance(raw_secrets, dict):
        refuse(("secrets",), f"got {type(raw_secrets).__name__}", "a mapping of secret name -> test value")
        raw_secrets = {}
    shared = _fixtures(data.get("fixtures"), ("fixtures",), refuse)
    cases = data.get("cases")
    if not isinstance(cases, list) or not cases:
        refuse(("cases",), "no cases", "cases: a list of {name, event, expect}")
        cases = []
    found = [_case(item, i, path.parent, shared, source_map, refuse) for i, item in enumerate(cases)]
    if problems:
        raise errors.FlowInvalid(problems)
    secrets = {str(k): str(v) for k, v in raw_secrets.items()}
    return FlowTestFile(path, str(flow_id), secrets, tuple(c for c in found if c is not None), source_map)


def _fixtures(raw: Json, where: tuple[str | int, ...], refuse: _Refuse) -> dict[str, Answer]:
    try:
        return parse_fixtures(raw, load.format_path(where))
    except errors.InvalidInput as exc:
        refuse(where, exc.message, "step id or connection.action -> {answer: …} or {error: …}")
        return {}


def _case(
    item: Json, i: int, folder: Path, shared: Mapping[str, Answer], source_map: load.SourceMap, refuse: _Refuse
) -> FlowTestCase | None:
    at: tuple[str | int, ...] = ("cases", i)
    if not isinstance(item, dict):
        refuse(at, f"got {type(item).__name__}", "a mapping with name, event and expect")
        return None
    for key in sorted(set(item) - _CASE_KEYS):
        refuse((*at, key), f"unknown key {key!r}", f"one of {', '.join(sorted(_CASE_KEYS))}")
    event = item.get("event")
    if "event_file" in item:
        event = _read_event(folder / str(item["event_file"]), (*at, "event_file"), refuse)
    elif event is None:
        refuse(at, "no event", "event: {body: …} or event_file: a JSON/YAML file holding one")
    expect = item.get("expect")
    if not isinstance(expect, dict):
        refuse((*at, "expect"), "no expectations", "expect: {outcome?, effects?, steps?}")
        expect = {}
    for key in sorted(set(expect) - _EXPECT_KEYS):
        refuse((*at, "expect", key), f"unknown key {key!r}", f"one of {', '.join(sorted(_EXPECT_KEYS))}")
    outcome = expect.get("outcome")
    if outcome is not None and outcome not in _OUTCOMES:
        refuse((*at, "expect", "outcome"), f"got {errors.redact(outcome)}", f"one of {', '.join(_OUTCOMES)}")
    fixtures = {**shared, **_fixtures(item.get("fixtures"), (*at, "fixtures"), refuse)}
    name = str(item.get("name") or f"case {i + 1}")
    return FlowTestCase(name, i, event, fixtures, expect, source_map.locate(at))


def _read_event(path: Path, where: tuple[str | int, ...], refuse: _Refuse) -> Json:
    try:
        text = path.read_bytes()
        return codec.loads(text) if path.suffix == ".json" else load.parse_yaml(text, str(path))[0]
    except (OSError, ValueError, errors.InvalidInput) as exc:
        refuse(where, f"cannot read {path}: {errors.redact(str(exc), limit=200)}", "a JSON or YAML file {body: …}")
        return None


def check_case(case: FlowTestCase, rehearsal: Rehearsal, source_map: load.SourceMap) -> list[errors.Problem]:
    """Every way `rehearsal` differs from what `case` expects, each at the line of its expectation."""
    at: tuple[str | int, ...] = ("cases", case.index, "expect")
    found: list[errors.Problem] = []

    def differ(path: tuple[str | int, ...], expected: object, got: object) -> None:
        shown = got if isinstance(got, str) and path[-1] == "outcome" else errors.redact(got, limit=300)
        found.append(errors.Problem(source_map.locate(path), f"got {shown}", errors.redact(expected, limit=300)))

    outcome = case.expect.get("outcome")
    if outcome is not None and outcome != rehearsal.outcome:
        failed = [s for s in rehearsal.steps if s.error is not None]
        why = f" (step {failed[-1].id}: {failed[-1].as_json()['error']})" if failed else ""
        differ((*at, "outcome"), outcome, f"{rehearsal.outcome}{why}")
    effects = case.expect.get("effects")
    if isinstance(effects, list):
        _check_effects(effects, rehearsal, (*at, "effects"), differ)
    steps = case.expect.get("steps")
    if isinstance(steps, dict):
        outputs = {s.id: s.output for s in rehearsal.steps}
        for step_id, wanted in steps.items():
            if step_id not in outputs:
                differ((*at, "steps", step_id), f"step {step_id} to run", f"no step {step_id} ran")
            elif isinstance(wanted, dict) and "output" in wanted:
                _match(wanted["output"], outputs[step_id], (*at, "steps", step_id, "output"), differ)
    return found


def _check_effects(expected: list[Json], rehearsal: Rehearsal, at: tuple[str | int, ...], differ: _Differ) -> None:
    got = rehearsal.effects
    calls = [f"{e.connection}.{e.action}" for e in got]
    if len(expected) != len(got):
        differ(at, f"{len(expected)} call(s)", f"{len(got)} call(s): {', '.join(calls) or 'none'}")
    for i, (want, effect) in enumerate(zip(expected, got, strict=False)):
        if not isinstance(want, dict):
            differ((*at, i), "{call, step?, request?}", want)
            continue
        call = f"{effect.connection}.{effect.action}"
        if "call" in want and want["call"] != call:
            differ((*at, i, "call"), want["call"], call)
        if "step" in want and want["step"] != effect.step:
            differ((*at, i, "step"), want["step"], effect.step)
        if "request" in want:
            _match(want["request"], effect.request, (*at, i, "request"), differ)


def _match(expected: Json, got: Json, at: tuple[str | int, ...], differ: _Differ) -> None:
    """`got` contains `expected`: mappings by their listed keys, lists and values exactly."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            differ(at, expected, got)
            return
        for key, value in expected.items():
            if key not in got:
                differ((*at, key), value, "no such field")
            else:
                _match(value, got[key], (*at, key), differ)
    elif isinstance(expected, list) and isinstance(got, list) and len(expected) == len(got):
        for i, (want, have) in enumerate(zip(expected, got, strict=True)):
            _match(want, have, (*at, i), differ)
    elif expected != got or (type(expected) is not type(got) and not _same_number(expected, got)):
        differ(at, expected, got)


def _same_number(a: object, b: object) -> bool:
    numbers = (int, float)
    return isinstance(a, numbers) and isinstance(b, numbers) and not isinstance(a, bool) and a == b


@dataclass(frozen=True, slots=True)
class CaseResult:
    """One case's verdict: the problems found (none: it passed) and the rehearsal they came from."""

    file: str
    case: FlowTestCase
    problems: tuple[errors.Problem, ...]
    rehearsal: Rehearsal | None

    @property
    def is_passed(self) -> bool:
        """True when the run did what the case expects."""
        return not self.problems


async def run_test_file(
    test: FlowTestFile, flow: CompiledFlow, environ: Mapping[str, str] | None = None
) -> list[CaseResult]:
    """Rehearse every case of `test` on one stage and check each against its expectations.

    Args:
        test: the loaded file.
        flow: the compiled flow it tests.
        environ: where `SEAMFLOW_SECRET_*` and `SEAMFLOW_VAR_*` come from (default: the process's);
            the file's `secrets:` win over the environment's.
    """
    secrets = {**engine.load_secrets(environ), **test.secrets}
    context = {"secrets": expressions.Secrets(secrets), "env": engine.load_env(environ)}
    results: list[CaseResult] = []
    async with Stage.open(context) as stage:
        for case in test.cases:
            try:
                started = event_of(flow.spec, case.event, f"cases[{case.index}].event")
                rehearsal = await stage.rehearse(flow, started, Answers(fixtures=case.fixtures))
            except errors.InvalidInput as exc:
                problem = errors.Problem(case.where, exc.message, "an event the flow accepts")
                results.append(CaseResult(test.source_map.file, case, (problem,), None))
                continue
            found = check_case(case, rehearsal, test.source_map)
            results.append(CaseResult(test.source_map.file, case, tuple(found), rehearsal))
    return results
