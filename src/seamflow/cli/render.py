"""How runs look in the terminal: a table of runs, and a run with its step attempts."""

from __future__ import annotations

import click

from seamflow import codec, redact, store
from seamflow.ids import Json

__all__ = ["print_run", "print_runs"]


def _short(value: Json, limit: int = 160) -> str:
    text = codec.dumps_text(redact.mask(value))
    return text if len(text) <= limit else text[: limit - 1] + "…"


def print_runs(runs: list[store.RunSummary], *, as_json: bool = False, with_error: bool = False) -> None:
    """Print runs, one per line (or as JSON)."""
    if as_json:
        click.echo(codec.dumps_text(redact.mask([_summary(r) for r in runs])))
        return
    for r in runs:
        line = f"{r.run_id}  {r.flow_id:28} {r.status.value:12} {r.created.isoformat(timespec='seconds')}"
        if with_error and r.error is not None:
            line += f"  {_short(r.error)}"
        click.echo(line)
    if not runs:
        click.echo("no runs")


def _summary(r: store.RunSummary) -> Json:
    return {
        "run_id": r.run_id,
        "flow": r.flow_id,
        "version": r.flow_version,
        "status": r.status.value,
        "created": r.created.isoformat(),
        "finished": r.finished.isoformat() if r.finished else None,
        "error": r.error,
    }


def print_run(summary: store.RunSummary, state: store.RunState, *, as_json: bool = False) -> None:
    """Print a run and each journaled step attempt: status, attempt, timing, input, output, error."""
    steps: list[Json] = [
        {
            "step": e.path,
            "kind": e.kind,
            "attempt": e.attempt,
            "status": e.status.value,
            "duration_ms": round((e.finished - e.started).total_seconds() * 1000, 3),
            "input": e.input,
            "output": e.output,
            "error": e.error,
        }
        for e in state.journal
    ]
    if as_json:
        summary_json = _summary(summary)
        assert isinstance(summary_json, dict)
        click.echo(codec.dumps_text(redact.mask({**summary_json, "event": state.event_body, "steps": steps})))
        return
    click.echo(f"run      {summary.run_id}")
    click.echo(f"flow     {summary.flow_id} @ {summary.flow_version}")
    click.echo(f"status   {summary.status.value}")
    click.echo(f"created  {summary.created.isoformat()}")
    if summary.error is not None:
        click.echo(f"error    {_short(summary.error, 400)}")
    click.echo(f"event    {_short(state.event_body)}")
    for step in steps:
        assert isinstance(step, dict)
        click.echo(
            f"  - {step['step']} [{step['kind']}] attempt {step['attempt']}:"
            f" {step['status']} ({step['duration_ms']} ms)"
        )
        for field in ("input", "output", "error"):
            if step[field] is not None:
                click.echo(f"      {field:6} {_short(step[field])}")
