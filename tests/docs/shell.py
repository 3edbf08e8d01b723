"""Run the shell blocks of a Markdown page in order, in one bash, and compare what they print with the page.

A page marks its blocks with the fence's info string:

- ```` ```bash ```` runs; ```` ```bash skip: <reason> ```` does not (the reason is printed).
- ```` ```output ```` right after a bash block is what that block prints (stdout and stderr),
  compared loosely: whitespace runs count as one space, `…` stands for any text, and the lines
  shown must appear in this order among the lines printed (others may come between).
  ```` ```output exit=2 ```` says the block's last command fails with that status on purpose;
  otherwise every command of the block must succeed.

The blocks share one bash process (its folder, variables and background jobs carry over), so a
page is run as a reader pastes it. Each block is sent once the one before has finished; the end
of a block is a marker line the runner waits for, polling a queue with a deadline.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Block", "BlockFailed", "Shell", "extract_blocks", "missing_lines"]

_FENCE = re.compile(r"^```(\S*)\s*(.*)$")


@dataclass(frozen=True, slots=True)
class Block:
    """A fenced shell block of a page, with the output the page shows for it."""

    file: Path
    line: int
    code: str
    skip_reason: str | None = None
    expected: str | None = None
    expected_exit: int = 0

    @property
    def where(self) -> str:
        return f"{self.file.name}:{self.line}"


@dataclass(slots=True)
class _Fenced:
    language: str
    info: str
    line: int
    lines: list[str] = field(default_factory=list)
    is_after_blank_only: bool = False


def _fenced(path: Path) -> Iterator[_Fenced]:
    current: _Fenced | None = None
    is_gap_blank = True
    for number, line in enumerate(path.read_text("utf-8").splitlines(), 1):
        if current is None:
            match = _FENCE.match(line)
            if match:
                current = _Fenced(match[1], match[2].strip(), number + 1, is_after_blank_only=is_gap_blank)
            elif line.strip():
                is_gap_blank = False
            continue
        if line.strip() == "```":
            yield current
            current, is_gap_blank = None, True
        else:
            current.lines.append(line)


def extract_blocks(path: Path) -> list[Block]:
    """The ```` ```bash ```` blocks of `path` in order, each with the ```` ```output ```` block that follows it."""
    blocks: list[Block] = []
    for fenced in _fenced(path):
        if fenced.language == "bash":
            skip = fenced.info.removeprefix("skip:").strip() if fenced.info.startswith("skip:") else None
            blocks.append(Block(path, fenced.line, "\n".join(fenced.lines) + "\n", skip_reason=skip))
        elif fenced.language == "output" and blocks and fenced.is_after_blank_only:
            last = blocks[-1]
            if last.expected is not None:
                raise ValueError(f"{path.name}:{fenced.line}: a second output block for one bash block")
            status = re.fullmatch(r"exit=(\d+)", fenced.info)
            blocks[-1] = Block(
                last.file,
                last.line,
                last.code,
                last.skip_reason,
                "\n".join(fenced.lines),
                int(status[1]) if status else 0,
            )
    return blocks


def _normal(line: str) -> str:
    return re.sub(r"\s+", " ", line).strip()


def _pattern(line: str) -> re.Pattern[str]:
    parts = re.split(r"\s*…\s*", _normal(line))
    return re.compile(".*".join(re.escape(part) for part in parts))


def missing_lines(expected: str, actual: str) -> list[str]:
    """The expected lines not found, in order, among the actual ones (empty: the output matches)."""
    printed = [_normal(line) for line in actual.splitlines()]
    at = 0
    for index, line in enumerate(wanted := [line for line in expected.splitlines() if line.strip()]):
        pattern = _pattern(line)
        while at < len(printed) and not pattern.fullmatch(printed[at]):
            at += 1
        if at == len(printed):
            return wanted[index:]
        at += 1
    return []


class BlockFailed(AssertionError):
    """A block did not finish in time, a command failed, or its output differs from the page."""


class Shell:
    """One bash in a new session, fed block after block; `close` ends it and everything it started."""

    def __init__(self, cwd: Path, env: dict[str, str], rewrite: Callable[[str], str]) -> None:
        self._rewrite = rewrite
        self._process = subprocess.Popen(
            ["bash", "--noprofile", "--norc"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._send("exec 2>&1\ntrap 'echo \"@@err $? $BASH_COMMAND\"' ERR\n")
        self._count = 0

    def _read(self) -> None:
        assert self._process.stdout is not None
        for raw in self._process.stdout:
            self._lines.put(raw.decode("utf-8", "replace").rstrip("\n"))
        self._lines.put(None)

    def _send(self, text: str) -> None:
        assert self._process.stdin is not None
        self._process.stdin.write(text.encode())
        self._process.stdin.flush()

    def run(self, block: Block, timeout_s: float) -> tuple[list[str], int, list[str]]:
        """Run `block`; return its output lines, the status of its last command and the commands that failed."""
        self._count += 1
        marker = f"@@done {self._count}"
        # a leading newline: the block's last output may not end its line
        self._send(f"{self._rewrite(block.code)}\n__rc=$?; printf '\\n{marker} %s\\n' $__rc\n")
        printed: list[str] = []
        failed: list[str] = []
        deadline = _Deadline(timeout_s)
        while True:
            try:
                line = self._lines.get(timeout=deadline.left())
            except queue.Empty:
                raise BlockFailed(
                    f"{block.where}: not finished after {timeout_s:.0f} s; printed:\n" + "\n".join(printed)
                ) from None
            if line is None:
                raise BlockFailed(f"{block.where}: the shell ended; printed:\n" + "\n".join(printed))
            if line.startswith(marker + " "):
                if printed and printed[-1] == "":
                    printed.pop()  # the marker's own leading newline after a finished line
                return printed, int(line.split()[-1]), failed
            if line.startswith("@@err "):
                failed.append(line.removeprefix("@@err "))
            else:
                printed.append(line)

    def close(self) -> None:
        """End the shell and every process of its session (the servers a page started in the background)."""
        group = self._process.pid
        _signal(group, signal.SIGTERM)
        deadline = _Deadline(15)
        while _signal(group, 0) and deadline.left() > 0:
            self._process.poll()  # reap bash, or the group stays alive as a zombie
            time.sleep(0.05)
        if _signal(group, 0):
            _signal(group, signal.SIGKILL)
        self._process.wait(timeout=10)
        self._reader.join(timeout=10)  # the pipe ends once the last process of the session is gone
        for pipe in (self._process.stdin, self._process.stdout):
            if pipe is not None:
                pipe.close()


def _signal(group: int, number: int) -> bool:
    """Send `number` to process group `group`; False if no process of it is left."""
    try:
        os.killpg(group, number)
    except ProcessLookupError:
        return False
    return True


class _Deadline:
    def __init__(self, seconds: float) -> None:
        self._end = time.monotonic() + seconds

    def left(self) -> float:
        return max(self._end - time.monotonic(), 0.0)
