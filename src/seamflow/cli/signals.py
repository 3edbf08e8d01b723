"""Ctrl-C for the commands that promise to stop on it (`sync load`, `demo`), however they were started.

A process inherits an ignored SIGINT: a shell that starts a job in the background without job
control (`cmd &` in a script, `nohup`, CI runners) sets SIGINT to ignored, and Python then does
not install its `KeyboardInterrupt` handler. Such a command would go on after Ctrl-C (or a test's
SIGINT) and exit 0 instead of 130, so these commands install the handler themselves.
"""

from __future__ import annotations

import signal

__all__ = ["stop_on_ctrl_c"]


def stop_on_ctrl_c() -> None:
    """Make SIGINT raise `KeyboardInterrupt` in this process, even if it was started with SIGINT ignored."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
