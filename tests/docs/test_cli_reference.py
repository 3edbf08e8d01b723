"""docs/reference/cli.md is what the Click commands say about themselves: regenerate it when they change.

SEAMFLOW_WRITE_EXPECTED_CLI_DOCS=1 pytest tests/docs/test_cli_reference.py
(or: python -m seamflow.cli.reference)
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

from seamflow.cli import reference

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "cli.md"


def test_the_cli_reference_page_is_generated_from_the_commands() -> None:
    committed = PAGE.read_text("utf-8")
    assert reference.MARKER in committed, f"{PAGE} lost its marker line; the generator keeps what is above it"
    generated = reference.render(committed)
    if os.environ.get("SEAMFLOW_WRITE_EXPECTED_CLI_DOCS") and generated != committed:
        PAGE.write_text(generated, "utf-8")
        committed = generated
    diff = "".join(
        difflib.unified_diff(committed.splitlines(True), generated.splitlines(True), "committed", "generated")
    )
    assert not diff, (
        "docs/reference/cli.md differs from the commands' help; regenerate it with"
        f" SEAMFLOW_WRITE_EXPECTED_CLI_DOCS=1 pytest {Path(__file__).name}\n{diff}"
    )


def test_every_command_has_a_section_and_hidden_options_stay_hidden() -> None:
    page = reference.render("# header\n")
    for command in ("seamflow serve", "seamflow dev receiver", "seamflow runs show", "seamflow secrets set"):
        assert f"### `{command}`" in page
    assert "--member" not in page and "--first-pid" not in page, "serve's internal options are not for people"
    assert page.startswith("# header\n\n" + reference.MARKER)
