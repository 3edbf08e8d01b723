"""How runs look in the terminal: a table of runs, and a run with its step attempts.

Error texts are shown as they were stored, escaped once (never the `repr` of a `repr`); a
JSON body inside an error (an HTTP 422's answer) is pretty-printed, and a long text is cut
with a marker that says how much was left out.
"""

from __future__ import annotations

import json
import textwrap

import click

from seamflow import codec, errors, redact, store
from seamflow.cli.table import print_json, print_table
from seamflow.ids import Json

__all__ = ["error_text", "print_run", "print_runs"]

_ERROR_SHOWN = 2000
"""Characters of an error shown by `runs show` before the truncation marker."""
_ERROR_IN_LIST = 240
"""Characters of an error shown in a listing (`runs dead-letters`)."""


def _short(value: Json, limit: int = 160) -> str:
    text = value if isinstance(value, str) else codec.dumps_text(redact.mask(value))
    return errors.truncate(redact.mask_text(text), limit)


def error_text(error: Json, *, limit: int = _ERROR_SHOWN, pretty: bool = True) -> str:
    """The message of a stored error (`{"code", "message", …}`), for a person.

    A JSON document inside the message is pretty-printed when `pretty`; the whole is cut to
    about `limit` characters with a `… [truncated, N more characters]` marker.
    """
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        code = error.get("code")
        message = str(error["message"])
        text = f"[{code}] {message}" if code else message
    else:
        text = error if isinstance(error, str) else codec.dumps_text(error)
    text = redact.mask_text(text)
    if pretty:
        text = _pretty_json_inside(text)
    else:
        text = " ".join(text.split())
    return errors.truncate(text, limit)


def _pretty_json_inside(text: str) -> str:
    """Indent the first JSON object or array in `text`, if there is one that parses."""
    decoder = json.JSONDecoder()
    for start, char in enumerate(text):
        if char not in "{[" or (start and (text[start - 1].isalnum() or text[start - 1] in "_]")):
            continue  # `steps[0]` is a path, not a JSON array
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if not value or not (isinstance(value, dict) or any(isinstance(v, dict | list) for v in value)):
            continue  # `expected one of [200, 201]` stays on its line
        shown = json.dumps(value, indent=2, ensure_ascii=False)
        return f"{text[:start].rstrip()}\n{shown}\n{text[end:].strip()}".rstrip()
    return text


def print_runs(runs: list[store.RunSummary], *, as_json: bool = False, with_error: bool = False) -> None:
    """Print runs as a table (or as JSON): id, flow, status, created, and the error with `with_error`."""
    if as_json:
        print_json([_summary(r) for r in runs])
        return
    columns = ["run", "flow", "status", "created"] + (["error"] if with_error else [])
    rows = []
    for r in runs:
        row: list[object] = [r.run_id, r.flow_id, r.status.value, r.created.isoformat(timespec="seconds")]
        if with_error:
            row.append(None if r.error is None else error_text(r.error, limit=_ERROR_IN_LIST, pretty=False))
        rows.append(row)
    print_table(columns, rows, empty="no runs")


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
        print_json({**summary_json, "event": state.event_body, "steps": steps})
        return
    click.echo(f"run      {summary.run_id}")
    click.echo(f"flow     {summary.flow_id} @ {summary.flow_version}")
    click.echo(f"status   {summary.status.value}")
    click.echo(f"created  {summary.created.isoformat()}")
    if summary.error is not None:
        click.echo(f"error    {_indented(error_text(summary.error), 9)}")
    click.echo(f"event    {_short(state.event_body)}")
    for step in steps:
        assert isinstance(step, dict)
        click.echo(
            f"  - {step['step']} [{step['kind']}] attempt {step['attempt']}:"
            f" {step['status']} ({step['duration_ms']} ms)"
        )
        for field in ("input", "output"):
            if step[field] is not None:
                click.echo(f"      {field:6} {_short(step[field])}")
        if step["error"] is not None:
            click.echo(f"      error  {_indented(error_text(step['error']), 13)}")


def _indented(text: str, by: int) -> str:
    """Continuation lines of a multi-line text, indented under its first line."""
    first, _, rest = text.partition("\n")
    return first if not rest else first + "\n" + textwrap.indent(rest, " " * by)
