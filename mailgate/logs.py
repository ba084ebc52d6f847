"""Logging: one line per mail and per notice, as key=value or JSON.

Events are named in the past tense (``mail.ingested``, ``notice.sent``).
Bodies are never logged; addresses in error text are redacted with
``redact()``. Times are ISO 8601 in UTC (``2026-11-23T09:00:00.123Z``) in both
formats, whatever the server's time zone. The ingest worker process logs in the
format ``serve`` was started with (``current_format()``). Imports only the
standard library.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from typing import Any

_FIELDS = "mailgate_fields"
_ALWAYS = ("ticket", "receipt")
_ADDRESS = re.compile(r"([A-Za-z0-9._%+-])[A-Za-z0-9._%+-]*@([A-Za-z0-9.-]+)")


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event with structured fields."""
    logger.log(level, name, extra={_FIELDS: fields})


def redact(text: str) -> str:
    """``alice@example.com`` → ``a***@example.com``: error text may travel into tickets."""
    return _ADDRESS.sub(r"\1***@\2", text)


def redact_url(url: str) -> str:
    """A database URL fit for logs and check output: the password replaced by ``***``."""
    scheme, sep, rest = url.partition("://")
    if "@" in rest:
        credentials, _, host = rest.rpartition("@")
        user = credentials.split(":", 1)[0]
        rest = f"{user}:***@{host}" if ":" in credentials else f"{user}@{host}"
    return f"{scheme}{sep}{rest}"


def _utc(record: logging.LogRecord) -> str:
    """ISO 8601 in UTC with milliseconds and ``Z``: what log collectors parse without a hint."""
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class KeyValueFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        fields = getattr(record, _FIELDS, {})
        parts = [
            _utc(record),
            record.levelname.lower(),
            record.getMessage(),
        ]
        parts.extend(f"{k}={_kv(v)}" for k, v in fields.items() if v is not None)
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": _utc(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
        }
        # A line about a mail always says which ticket and receipt, null when there is none.
        data.update(
            {
                k: v
                for k, v in getattr(record, _FIELDS, {}).items()
                if v is not None or k in _ALWAYS
            }
        )
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


def _kv(value: Any) -> str:
    text = "" if value is None else str(value)
    if text and not any(c in text for c in ' "=\n'):
        return text
    return json.dumps(text, ensure_ascii=False)


def current_format() -> str:
    """The format ``setup()`` chose for this process: "json" or "text"."""
    handlers = logging.getLogger().handlers
    return "json" if any(isinstance(h.formatter, JsonFormatter) for h in handlers) else "text"


def setup(fmt: str = "text", level: int = logging.INFO) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else KeyValueFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    for noisy in ("mail.log", "mailparser", "apscheduler", "peewee"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
