"""The command line's surface: every command's `--help` pinned, every option explained, every listing with --json.

A change of a command, an option or a help text shows here, in review. After an intended change:

    SEAMFLOW_WRITE_SNAPSHOTS=1 pytest tests/unit/test_cli_help.py
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from seamflow.cli import main

SNAPSHOT = Path(__file__).parent / "snapshots" / "cli_help.txt"
LISTINGS = {
    "flow list",
    "runs list",
    "runs dead-letters",
    "workers",
    "connections list",
    "secrets list",
    "sync list",
    "sync conflicts",
}


def _commands(command: click.Command, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], click.Command]]:
    yield path, command
    if isinstance(command, click.Group):
        for name in sorted(command.commands):
            yield from _commands(command.commands[name], (*path, name))


def _help(path: tuple[str, ...]) -> str:
    result = CliRunner().invoke(main, [*path, "--help"], prog_name="seamflow", terminal_width=100)
    assert result.exit_code == 0, result.output
    return result.output


def _all_help() -> str:
    sections = []
    for path, command in _commands(main):
        hidden = "  (hidden)" if command.hidden else ""
        sections.append(f"=== {' '.join(('seamflow', *path))}{hidden}\n{_help(path)}")
    return "\n".join(sections)


def test_help_of_every_command_matches_the_snapshot() -> None:
    text = _all_help()
    if os.environ.get("SEAMFLOW_WRITE_SNAPSHOTS"):
        SNAPSHOT.write_text(text, encoding="utf-8")
    expected = SNAPSHOT.read_text(encoding="utf-8")
    assert text == expected, "the CLI's surface changed; if intended: SEAMFLOW_WRITE_SNAPSHOTS=1 pytest " + __file__


@pytest.mark.parametrize(
    "path", [p for p, c in _commands(main) if not c.hidden], ids=lambda path: " ".join(path) or "seamflow"
)
def test_every_command_and_option_says_what_it_is_for(path: tuple[str, ...]) -> None:
    command = dict(_commands(main))[path]
    assert command.help, f"seamflow {' '.join(path)} has no help text"
    unexplained = [p.opts[0] for p in command.params if isinstance(p, click.Option) and not p.hidden and not p.help]
    assert unexplained == [], f"options without help text in seamflow {' '.join(path)}"


@pytest.mark.parametrize("listing", sorted(LISTINGS))
def test_every_listing_command_offers_json(listing: str) -> None:
    command = dict(_commands(main))[tuple(listing.split())]
    assert any("--json" in p.opts for p in command.params if isinstance(p, click.Option))
