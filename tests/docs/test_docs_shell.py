"""The README's tutorial and docs/tutorial/ work when pasted: their shell blocks run in order and print what they show.

Each page runs in a fresh folder holding `.venv` (a link to this test's environment), so its
commands are the reader's: `export PATH="$PWD/.venv/bin:$PATH"`, `seamflow init shop`, a real
`seamflow serve` and `seamflow dev receiver` in the background. Other engineers' servers may hold
8080 and 9000 on this machine, so the pages' ports are swapped for free ones on the way in and
back on the way out.
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.docs.shell import Block, BlockFailed, Shell, extract_blocks, missing_lines
from tests.support.server import free_port

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs" / "tutorial").glob("*.md"))]
BLOCK_TIMEOUT_S = 90
SERVE_PORT, RECEIVER_PORT = 8080, 9000


def _ports() -> tuple[int, int]:
    serve = free_port()
    receiver = free_port()
    while receiver == serve:
        receiver = free_port()
    return serve, receiver


def _rewriter(serve: int, receiver: int) -> tuple[Callable[[str], str], Callable[[str], str]]:
    def inward(code: str) -> str:
        code = re.sub(r"\bseamflow serve\b", f"seamflow serve --port {serve}", code)
        code = re.sub(r"\bseamflow dev receiver\b", f"seamflow dev receiver --port {receiver}", code)
        return code.replace(f":{SERVE_PORT}", f":{serve}").replace(f":{RECEIVER_PORT}", f":{receiver}")

    def outward(text: str) -> str:
        return text.replace(f":{serve}", f":{SERVE_PORT}").replace(f":{receiver}", f":{RECEIVER_PORT}")

    return inward, outward


def _environment(receiver: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SEAMFLOW_")}
    env["SEAMFLOW_VAR_ORDERS_BASE_URL"] = f"http://127.0.0.1:{receiver}"  # a real variable wins over .env
    env["PATH"] = "/usr/local/bin:/usr/bin:/bin"  # the page puts .venv/bin first itself
    return env


def _logs(folder: Path) -> str:
    shown = []
    for log in sorted(folder.rglob("*.log")):
        lines = log.read_text("utf-8", "replace").splitlines()[-15:]
        shown.append(f"--- {log.relative_to(folder)} (last lines)\n" + "\n".join(lines))
    return "\n".join(shown)


def _check(block: Block, printed: list[str], status: int, failed: list[str]) -> None:
    output = "\n".join(printed)
    if status != block.expected_exit:
        raise BlockFailed(f"{block.where}: exited {status}, expected {block.expected_exit}; printed:\n{output}")
    if block.expected_exit == 0 and failed:
        raise BlockFailed(f"{block.where}: these commands failed: {failed}; printed:\n{output}")
    if block.expected is not None and (missing := missing_lines(block.expected, output)):
        raise BlockFailed(
            f"{block.where}: the page shows lines the commands did not print (from the first missing one):\n"
            + "\n".join(missing)
            + f"\n\nprinted:\n{output}"
        )


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_the_shell_blocks_of_the_page_work_when_pasted_in_order(page: Path, tmp_path: Path) -> None:
    for tool in ("bash", "curl", "sed", "grep"):
        if shutil.which(tool) is None:
            pytest.skip(f"{tool} is not installed; the pages use it")
    blocks = extract_blocks(page)
    assert [b for b in blocks if b.skip_reason is None], f"{page.name} has no ```bash block to run"
    (tmp_path / ".venv").symlink_to(Path(sys.executable).parent.parent)
    assert (tmp_path / ".venv" / "bin" / "seamflow").exists(), "seamflow is installed beside this Python"
    serve, receiver = _ports()
    inward, outward = _rewriter(serve, receiver)
    shell = Shell(tmp_path, _environment(receiver), inward)
    try:
        for block in blocks:
            if block.skip_reason is not None:
                print(f"skipped {block.where}: {block.skip_reason}")
                continue
            printed, status, failed = shell.run(block, BLOCK_TIMEOUT_S)
            try:
                _check(block, [outward(line) for line in printed], status, failed)
            except BlockFailed as exc:
                raise BlockFailed(f"{exc}\n\n{_logs(tmp_path)}") from None
    finally:
        shell.close()


NOT_RUN = [block for page in PAGES for block in extract_blocks(page) if block.skip_reason is not None]


@pytest.mark.parametrize("block", NOT_RUN, ids=lambda b: b.where)
def test_blocks_marked_not_run_are_reported_with_their_reason(block: Block) -> None:
    assert block.skip_reason, f"{block.where}: `skip:` needs a reason"
    pytest.skip(f"{block.where} is not run: {block.skip_reason}")


def test_the_readme_shows_the_flow_that_init_writes() -> None:
    scaffold = (ROOT / "src" / "seamflow" / "cli" / "scaffold" / "flows" / "hello.yaml").read_text("utf-8")
    readme = (ROOT / "README.md").read_text("utf-8")
    shown = re.findall(r"^```yaml\n(.*?)^```$", readme, flags=re.MULTILINE | re.DOTALL)
    assert scaffold in shown, "README.md's flow differs from src/seamflow/cli/scaffold/flows/hello.yaml"


def test_output_is_compared_loosely_but_every_shown_line_must_be_printed_in_order() -> None:
    printed = "header\nrun_01abc  hello-orders   completed  2026-12-07\nnoise\nok: 1 flow(s) valid"
    assert missing_lines("run_01… hello-orders … completed …\nok: 1 flow(s) valid", printed) == []
    assert missing_lines("ok: 1 flow(s) valid\nrun_01… hello-orders …", printed) == ["run_01… hello-orders …"]
    assert missing_lines("ok: 2 flow(s) valid", printed) == ["ok: 2 flow(s) valid"]


def test_the_runner_keeps_state_reports_failures_and_ends_what_a_page_started(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "```bash\ncd /tmp && X=42\nsleep 600 &  SLEEPER=$!\nprintf 'no newline at the end'\n```\n"
        '```bash\necho "$PWD $X"; false; echo after\n```\n',
        "utf-8",
    )
    first, second = extract_blocks(page)
    shell = Shell(tmp_path, _environment(RECEIVER_PORT), lambda code: code)
    try:
        assert shell.run(first, 30) == (["no newline at the end"], 0, [])
        printed, status, failed = shell.run(second, 30)
        assert (printed, status, failed) == (["/tmp 42", "after"], 0, ["1 false"])
        group = shell._process.pid
    finally:
        shell.close()
    with pytest.raises(ProcessLookupError):
        os.killpg(group, 0)  # the background sleep went with the shell
