"""Log lines on stderr, every registered secret masked: coloured text for a person at a terminal,
JSON lines (carrying run and step ids) for a machine.

`--log-format auto` (the default, or `$SEAMFLOW_LOG_FORMAT`) picks text when stderr is a
terminal and JSON otherwise. uvicorn's own loggers go through the same handler. JSON never
carries uvicorn's `color_message` (the message again, with ANSI colour codes).
"""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

from seamflow import codec, redact

__all__ = ["LOG_FORMATS", "RedactingFilter", "configure_logging"]

LOG_FORMATS = ("auto", "json", "text")
"""The values of `--log-format`."""
_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}
_LEFT_OUT = {"color_message"}
"""`extra` fields never shown: uvicorn's copy of the message with ANSI escape codes."""
_UVICORN = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


class RedactingFilter(logging.Filter):
    """Masks every secret the redactor knows (`seamflow.redact.register`) in a record before any handler sees it.

    The message is rendered with its arguments first (a secret may be an argument), text
    `extra` fields are masked, and an exception's traceback is rendered and masked into
    `exc_text`, so that handlers other than ours are safe too.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact.mask_text(record.getMessage())
        record.args = None
        for key, value in vars(record).items():
            if key not in _STANDARD and isinstance(value, str):
                setattr(record, key, redact.mask_text(value))
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact.mask_text(record.exc_text)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message and any `extra` fields."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in _LEFT_OUT:
                line[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        if record.exc_text:
            line["exception"] = record.exc_text
        elif record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # Masked again as a whole: a secret may sit in a non-text extra field, or be JSON-escaped.
        return redact.mask_text(codec.dumps_text(line))  # type: ignore[arg-type]  # JSON-safe by the loop above


class TextFormatter(logging.Formatter):
    """For a handler that shows time and level itself: the message, then `key=value` for each `extra` field."""

    def format(self, record: logging.LogRecord) -> str:
        fields = " ".join(
            f"{key}={value}"
            for key, value in vars(record).items()
            if key not in _STANDARD and key not in _LEFT_OUT and not key.startswith("_")
        )
        text = record.getMessage() + (f"  {fields}" if fields else "")
        if record.exc_text:
            text += "\n" + record.exc_text
        return redact.mask_text(text)


def configure_logging(level: str = "info", log_format: str = "auto") -> None:
    """Send Seamflow's and uvicorn's logs to stderr, secrets masked.

    Args:
        level: the lowest level shown (debug, info, warning, error).
        log_format: `json`, `text` (coloured lines with Rich), or `auto`: text when stderr is a
            terminal, JSON otherwise.
    """
    is_text = log_format == "text" or (log_format == "auto" and sys.stderr.isatty())
    handler = _text_handler() if is_text else logging.StreamHandler(sys.stderr)
    if not is_text:
        handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in _UVICORN:  # through our handler, not uvicorn's own (it would add color_message lines)
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
        logger.setLevel(logging.NOTSET)  # the level given here, whatever a uvicorn.Config set before
    logging.getLogger("uvicorn.access").setLevel(logging.WARNING)


def _text_handler() -> logging.Handler:
    from rich.console import Console
    from rich.logging import RichHandler

    handler = RichHandler(
        console=Console(stderr=True),
        show_path=False,
        markup=False,
        rich_tracebacks=False,
        log_time_format="%H:%M:%S",
    )
    handler.setFormatter(TextFormatter())
    return handler
