"""A flow compiled once per version: every template of every step parsed, ready for the executor."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from seamflow.flows import spec
from seamflow.flows.expressions import Template

__all__ = ["CompiledFlow", "CompiledStep", "compile_flow"]


@dataclass(frozen=True, slots=True)
class CompiledStep:
    """One step with its templates compiled; `children`/`otherwise` hold nested steps."""

    spec: (
        spec.ActionStep
        | spec.TransformStep
        | spec.BranchStep
        | spec.ForeachStep
        | spec.CallStep
        | spec.RespondStep
        | spec.WaitStep
        | spec.EmitStep
        | spec.ApprovalStep
    )
    kind: str
    templates: Mapping[str, Template]
    children: tuple[CompiledStep, ...] = ()
    otherwise: tuple[CompiledStep, ...] = ()

    @property
    def id(self) -> str:
        """The step id."""
        return self.spec.id

    def template(self, name: str) -> Template | None:
        """The compiled template of a field, if the step has it."""
        return self.templates.get(name)


@dataclass(frozen=True, slots=True)
class CompiledFlow:
    """A flow version ready to run."""

    spec: spec.Flow
    version: str
    source: str
    path: str
    steps: tuple[CompiledStep, ...]
    when: Template | None = None
    dedupe_key: Template | None = None
    signature_secret: Template | None = None
    step_index: Mapping[str, CompiledStep] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The flow id."""
        return self.spec.id


def compile_flow(flow: spec.Flow, *, version: str, source: str, path: str) -> CompiledFlow:
    """Compile every template of `flow` (already validated)."""
    index: dict[str, CompiledStep] = {}
    steps = _compile_steps(flow.steps, "steps", frozenset(), index)
    webhook = flow.trigger.webhook
    return CompiledFlow(
        spec=flow,
        version=version,
        source=source,
        path=path,
        steps=steps,
        when=_opt(flow.when, "when"),
        dedupe_key=_opt(webhook.dedupe_key, "trigger.webhook.dedupe_key")
        if webhook
        else _opt(flow.trigger.oa.dedupe_key if flow.trigger.oa else None, "trigger.oa.dedupe_key"),
        signature_secret=_opt(
            webhook.signature.secret if webhook and webhook.signature else None,
            "trigger.webhook.signature.secret",
        ),
        step_index=index,
    )


def _opt(value: object, where: str, names: frozenset[str] = frozenset()) -> Template | None:
    return None if value is None else Template.compile(value, where=where, extra_names=names)


def _compile_steps(
    steps: list[spec.Step], where: str, names: frozenset[str], index: dict[str, CompiledStep]
) -> tuple[CompiledStep, ...]:
    compiled = []
    for i, step in enumerate(steps):
        here = f"{where}[{i}]"
        kind = spec.step_kind(step) or "?"
        templates = _templates(step, here, names)
        children: tuple[CompiledStep, ...] = ()
        otherwise: tuple[CompiledStep, ...] = ()
        if isinstance(step, spec.BranchStep):
            children = _compile_steps(step.then, f"{here}.then", names, index)
            otherwise = _compile_steps(step.else_, f"{here}.else", names, index)
        elif isinstance(step, spec.ForeachStep):
            inner = names | {step.as_}
            children = _compile_steps(step.steps, f"{here}.steps", inner, index)
        item = CompiledStep(step, kind, templates, children, otherwise)
        index[step.id] = item
        compiled.append(item)
    return tuple(compiled)


def _templates(step: spec.Step, where: str, names: frozenset[str]) -> dict[str, Template]:
    fields: dict[str, object] = {}
    if step.idempotency_key is not None:
        fields["idempotency_key"] = step.idempotency_key
    match step:
        case spec.ActionStep():
            fields["with"] = step.with_
            if step.output is not None:
                fields["output"] = step.output
        case spec.TransformStep():
            fields["transform"] = step.transform
        case spec.BranchStep():
            fields["if"] = step.if_
        case spec.ForeachStep():
            fields["foreach"] = step.foreach
        case spec.CallStep():
            fields["input"] = step.input
        case spec.RespondStep():
            fields["body"] = step.respond.body
            fields["headers"] = step.respond.headers
        case spec.WaitStep():
            if step.wait.until is not None:
                fields["until"] = step.wait.until
            if step.wait.key is not None:
                fields["key"] = step.wait.key
        case spec.EmitStep():
            fields["activity"] = step.emit.activity
            fields["objects"] = step.emit.objects
            fields["attributes"] = step.emit.attributes
            if step.emit.time is not None:
                fields["time"] = step.emit.time
        case spec.ApprovalStep():
            _approval_templates(step.approval, fields)
    extra = names | {"result"} if isinstance(step, spec.ActionStep) else names
    return {
        name: Template.compile(value, where=f"{where}.{name}", extra_names=extra if name == "output" else names)
        for name, value in fields.items()
    }


def _approval_templates(approval: spec.ApprovalSpec, fields: dict[str, object]) -> None:
    fields["requester"] = approval.requester
    if approval.subject is not None:
        fields["subject"] = approval.subject
    for i, level in enumerate(approval.levels):
        if level.when is not None:
            fields[f"levels[{i}].when"] = level.when
        for j, who in enumerate(level.assignees):
            if who.expression is not None:
                fields[f"levels[{i}].assignees[{j}]"] = who.expression
            elif who.department_head is not None:
                fields[f"levels[{i}].assignees[{j}]"] = who.department_head
