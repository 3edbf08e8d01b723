"""The CLI reference page, generated from the Click commands: `python -m seamflow.cli.reference [PAGE]`.

`docs/reference/cli.md` is a hand-written header (what the generator cannot know: shared options,
exit codes, examples) followed by a marker line and one section per command, written from the
commands' own help texts, so the page cannot drift from the program. `tests/docs/test_cli_reference.py`
fails when the committed page differs from what this writes.
"""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import click

__all__ = ["MARKER", "render", "write"]

MARKER = (
    "<!-- Generated below from the commands' help by `python -m seamflow.cli.reference`: edit the help texts"
    " in src/seamflow/cli/, or the header above this line. -->"
)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|").replace("<", "&lt;")


def _section(command: click.Command, ctx: click.Context) -> list[str]:
    title = ctx.command_path
    lines = [f"### `{title}`", ""]
    text = inspect.cleandoc(command.help or command.short_help or "").replace("\b\n", "")
    if text:
        lines += [text, ""]
    usage = " ".join(command.collect_usage_pieces(ctx))
    lines += [f"Usage: `{title} {usage}`".rstrip(), ""]
    if command.deprecated:
        lines += ["Deprecated.", ""]
    options = [p for p in command.get_params(ctx) if isinstance(p, click.Option)]
    records = [r for p in options if (r := p.get_help_record(ctx)) is not None]
    records = [r for r in records if not r[0].startswith("--help")]
    if records:
        lines += ["| option | what it does |", "|---|---|"]
        lines += [f"| `{_cell(opts)}` | {_cell(helptext) or '-'} |" for opts, helptext in records]
        lines.append("")
    return lines


def _walk(command: click.Command, ctx: click.Context) -> list[str]:
    lines = [] if ctx.parent is None else _section(command, ctx)
    if isinstance(command, click.Group):
        for name in sorted(command.list_commands(ctx)):
            sub = command.get_command(ctx, name)
            if sub is not None and not sub.hidden:
                lines += _walk(sub, click.Context(sub, info_name=name, parent=ctx))
    return lines


def render(header: str) -> str:
    """The whole page: `header` (up to the marker), the marker, then every command's section."""
    from seamflow.cli.commands import main

    ctx = click.Context(main, info_name="seamflow")
    body = _walk(main, ctx)
    return header.split(MARKER)[0].rstrip("\n") + "\n\n" + MARKER + "\n\n" + "\n".join(body).rstrip("\n") + "\n"


def write(page: Path) -> bool:
    """Regenerate `page` in place, keeping its header; True if it changed."""
    old = page.read_text("utf-8") if page.exists() else "# The `seamflow` command\n"
    new = render(old)
    if new != old:
        page.write_text(new, "utf-8")
    return new != old


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else Path("docs/reference/cli.md")
    print(f"{target}: {'written' if write(target) else 'up to date'}")
