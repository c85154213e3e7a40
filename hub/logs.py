"""The hub's log: plain text or JSON lines, each carrying the id of the HTTP request being
handled (:data:`request_id`, set by the API's middleware in a context variable, so every line
written while handling a request carries it, in threads started with ``asyncio.to_thread`` too).

Nothing secret reaches the log: the hub's own code logs ids, codes and counts, never package
bodies, keys, credentials or headers; as a safety net the formatters drop ``extra`` fields
whose names say they hold such things and write bytes as their length only; and the
third-party loggers that write SQL parameters (package bytes) at debug level are held at
warning. ``cli.py`` calls :func:`configure`.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import sys
from typing import Any, TextIO

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "lienthong_request_id", default=None
)

# Attributes every LogRecord has; anything else on a record came from ``extra=``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}
# ``extra`` keys never written, whatever a caller passes (the safety net of the module doc).
_SECRET_WORDS = (
    "authorization",
    "body",
    "credential",
    "header",
    "package",
    "passphrase",
    "password",
    "private",
    "secret",
    "token",
)
# Libraries that would write package bytes: aiosqlite logs every call with its arguments at
# debug level, SQLAlchemy every statement with its parameters at info, signxml the canonical
# form of every package it signs or verifies at debug.
QUIET = ("aiosqlite", "sqlalchemy", "asyncpg", "signxml")


def _is_secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS) and not lowered.endswith(
        ("_sha256", "_id", "_bytes", "size")
    )


def _safe(value: Any) -> Any:
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    return value


def extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    """The ``extra`` fields of *record* that may be written."""
    return {
        k: _safe(v)
        for k, v in vars(record).items()
        if k not in _STANDARD and not k.startswith("_") and not _is_secret(k)
    }


class RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (``record.request_id``, None outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, the extra fields,
    and the exception's traceback if there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in extra_fields(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The classic line, with the request id and the extra fields as ``key=value``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        head, _, tail = text.partition("\n")  # keep a traceback below the fields
        fields = extra_fields(record)
        rid = getattr(record, "request_id", None)
        if rid:
            fields = {"request_id": rid, **fields}
        if fields:
            head += " " + " ".join(f"{k}={_safe(v)}" for k, v in fields.items())
        return f"{head}\n{tail}" if tail else head


def configure(fmt: str = "text", level: str = "warning", stream: TextIO | None = None) -> None:
    """Send the log to *stream* (standard error) in *fmt* ("text" or "json") from *level* up,
    replacing whatever was configured before."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for name in QUIET:
        logging.getLogger(name).setLevel(max(logging.WARNING, root.level))
