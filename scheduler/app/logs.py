"""One log line per event, as text or JSON, for journald and log shippers.

Events carry keys, kinds, group ids, recipients and error texts from mail servers; never a
message body, a goal, or a password (passwords never reach this process's config at all).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime

from scheduler.core.log import event, log  # noqa: F401 (the service logs through these)


def _stamp(record: logging.LogRecord) -> str:
    """When the line was logged: ISO 8601 in UTC, to the millisecond (2026-12-02T09:00:00.123Z)."""
    return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


class _Text(logging.Formatter):
    """`TIME LEVEL EVENT key=value...`: the time first, so a log read outside journald (a file,
    a terminal, `run --once` from cron) still says when each thing happened."""

    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, "fields", {})
        parts = [f"{k}={_quote(v)}" for k, v in fields.items() if v is not None]
        line = (f"{_stamp(record)} {record.levelname.lower()} {record.getMessage()}"
                + (" " + " ".join(parts) if parts else ""))
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _Json(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        doc = {"time": datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
               "level": record.levelname.lower(), "event": record.getMessage(),
               **{k: v for k, v in getattr(record, "fields", {}).items() if v is not None}}
        if record.exc_info:
            doc["traceback"] = self.formatException(record.exc_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def _quote(value: object) -> str:
    text = str(value)
    return json.dumps(text, ensure_ascii=False) if (not text or any(c in text for c in ' "=\n')) else text


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is when a line is logged, not when the handler was made
    (so a command run in-process, as the tests do, never writes to a stream since closed)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def setup(fmt: str = "text", *, debug: bool = False, level: int = logging.INFO) -> None:
    handler = _Stderr()
    handler.setFormatter(_Json() if fmt == "json" else _Text())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if debug else level)
    # Libraries' own chatter (TinyDB, urllib3, schedule) is not our event stream.
    for noisy in ("schedule", "urllib3", "googleapiclient", "mail.log"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
