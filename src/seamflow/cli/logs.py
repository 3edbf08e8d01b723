"""Structured JSON log lines on stderr, carrying run and step ids; every registered secret masked."""

from __future__ import annotations

import logging
import sys
from datetime import UTC, datetime

from seamflow import codec, redact

__all__ = ["RedactingFilter", "configure_logging"]

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


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
            if key not in _STANDARD:
                line[key] = value if isinstance(value, str | int | float | bool | None) else str(value)
        if record.exc_text:
            line["exception"] = record.exc_text
        elif record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        # Masked again as a whole: a secret may sit in a non-text extra field, or be JSON-escaped.
        return redact.mask_text(codec.dumps_text(line))  # type: ignore[arg-type]  # JSON-safe by the loop above


def configure_logging(level: str = "info") -> None:
    """Send Seamflow's logs to stderr as JSON lines, secrets masked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("uvicorn.access",):
        logging.getLogger(noisy).setLevel(logging.WARNING)
