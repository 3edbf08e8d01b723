"""Log lines: JSON without colour codes, text with the extra fields, uvicorn's loggers through ours, secrets masked."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from seamflow import redact
from seamflow.cli import logs


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    before = (root.handlers[:], root.level)
    yield io.StringIO()
    root.handlers[:] = before[0]
    root.setLevel(before[1])


def _configure(level: str, log_format: str, stream: io.StringIO) -> None:
    logs.configure_logging(level, log_format)
    handler = logging.getLogger().handlers[0]
    if isinstance(handler, logging.StreamHandler):
        handler.setStream(stream)
    else:
        handler.console.file = stream  # type: ignore[attr-defined]  # a RichHandler


def test_json_lines_carry_extra_fields_but_never_uvicorns_color_message(captured: io.StringIO) -> None:
    _configure("info", "json", captured)
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]", 4242, extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"}
    )
    logging.getLogger("seamflow.engine").warning("run dead-lettered", extra={"run_id": "run_01", "flow": "orders"})
    first, second = (json.loads(line) for line in captured.getvalue().splitlines())
    assert first == {
        "time": first["time"],
        "level": "info",
        "logger": "uvicorn.error",
        "message": "Started server process [4242]",
    }
    assert (second["run_id"], second["flow"]) == ("run_01", "orders")
    assert "\x1b" not in captured.getvalue() and "\\u001b" not in captured.getvalue()


def test_text_lines_show_message_and_fields_with_secrets_masked(captured: io.StringIO) -> None:
    redact.register("sk-erp-77aa1390")
    _configure("info", "text", captured)
    logging.getLogger("seamflow.connections").info(
        "token sk-erp-77aa1390 refused", extra={"connection": "erp", "color_message": "x"}
    )
    text = captured.getvalue()
    assert "token *** refused  connection=erp" in text
    assert "sk-erp-77aa1390" not in text and "color_message" not in text and not text.startswith("{")


def test_auto_is_json_when_stderr_is_not_a_terminal(captured: io.StringIO, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(logs.sys, "stderr", io.StringIO())  # not a terminal, also under `pytest -s`
    _configure("info", "auto", captured)
    logging.getLogger("uvicorn").info("Application startup complete.")
    assert json.loads(captured.getvalue())["message"] == "Application startup complete."
    assert logging.getLogger("uvicorn.error").handlers == [] and logging.getLogger("uvicorn.error").propagate
