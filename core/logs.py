"""Logging set-up with secret redaction.

Any credential value the runtime reads is registered here, and every log record is scrubbed of
registered values when it is created: a secret cannot reach a log line even through an
exception message from a third-party library.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterable

import orjson

from gpubroker.core.tracing import current_ids

REDACTED = "***"

_secrets: set[str] = set()
_lock = threading.Lock()


def register_secrets(values: Iterable[str]) -> None:
    """Remember values that must never be logged (values shorter than 4 chars are ignored)."""
    with _lock:
        _secrets.update(value for value in values if len(value) >= 4)


def redact(text: str) -> str:
    for value in _secrets:
        if value in text:
            text = text.replace(value, REDACTED)
    return text


def _install_record_factory() -> None:
    """Scrub every record at creation, so every handler (files, test capture) sees it clean."""
    base = logging.getLogRecordFactory()

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = base(*args, **kwargs)
        if _secrets:
            record.msg = redact(record.getMessage())
            record.args = None
            if record.exc_info and record.exc_info[1] is not None:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
                record.exc_info = None
        return record

    logging.setLogRecordFactory(factory)


_install_record_factory()


class JsonFormatter(logging.Formatter):
    """One JSON object per line, for log shippers."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": self.formatTime(record, "%Y-%m-%dT%H:%M:%S"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        ids = current_ids()
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc"] = record.exc_text
        return orjson.dumps(entry).decode()


def configure_logging(level: str = "INFO", *, json: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        JsonFormatter() if json else logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
