"""Log lines: plain text or one JSON object per line, each carrying the id of the request it belongs to;
the access log line the app writes per request (paths only, never a credential). Every line, error
tracebacks included, has capability tokens (signed blob paths, URL signatures) masked, and text lines
have control characters escaped, so a request cannot forge a line."""

from __future__ import annotations

import json
import logging
import re
import time
from contextvars import ContextVar
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

request_id: ContextVar[str | None] = ContextVar("request_id", default=None)
ACCESS = "app.access"
_SIGNED_PATH = re.compile(r"(/-/blobs/)[^/?\s\"']+")
_SIGNATURE = re.compile(
    r"((?:X-Amz-Signature|X-Goog-Signature|Signature|X-Amz-Security-Token|X-Amz-Credential|Credential)=)"
    r"[^&\s\"']+",
    re.I,
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
# LogRecord's own attributes: anything else on a record came in through `extra` and is logged as a field
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "request_id"}


def masked_path(path: str) -> str:
    """Text fit for a log: the local backend's signed tokens and cloud URL signatures are replaced. (Each
    pattern runs only on text holding its literal part: scanning a line costs ~20 µs, the test ~0.1.)"""
    if "/-/blobs/" in path:
        path = _SIGNED_PATH.sub(r"\1[signed]", path)
    return _SIGNATURE.sub(r"\1[masked]", path) if "=" in path else path


def escaped(text: str) -> str:
    """Control characters as \\xNN, so that one record stays one line."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class RequestIdFilter(logging.Filter):
    """Puts the current request's id on every record (None outside a request)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JSONFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extra fields, exception."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None) or request_id.get(),
        }
        line.update({k: v for k, v in vars(record).items() if k not in _STANDARD and not k.startswith("_")})
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return masked_path(json.dumps(line, default=str))


class TextFormatter(logging.Formatter):
    """`time LEVEL logger [request id]: message`; the access log keeps the common log format."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if record.name == ACCESS:
            return masked_path(escaped(record.getMessage()))
        text = super().format(record)
        rid = getattr(record, "request_id", None)
        text = text.replace(f" {record.name}: ", f" {record.name} [{rid}]: ", 1) if rid else text
        return masked_path(text)

    def formatMessage(self, record: logging.LogRecord) -> str:
        """The message on one line (a traceback, added after it, keeps its own lines)."""
        record.message = escaped(record.message)
        return super().formatMessage(record)


def configure(level: str, style: str) -> None:
    """Log to stderr at `level` in `style` (text | json), unless the host process (pytest) already
    handles the root logger."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(JSONFormatter() if style == "json" else TextFormatter())
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    logging.getLogger("app").setLevel(level)
    logging.getLogger(ACCESS).setLevel(logging.INFO)


@lru_cache(maxsize=2)
def _log_time(second: int) -> str:
    """The common log format's time of a second (formatted once, not per line)."""
    return datetime.fromtimestamp(second, UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def access(
    *,
    remote: str | None,
    method: str,
    path: str,
    status: int,
    size: int | None,
    agent: str | None,
    started: float,
    error: str | None = None,
) -> None:
    """The access log line of one request (common log format in text, then the error code of a failed
    one; fields in JSON)."""
    duration_ms = round((time.perf_counter() - started) * 1000, 2)
    when = _log_time(int(time.time()))
    path = masked_path(path)
    logging.getLogger(ACCESS).info(
        '%s - - [%s] "%s %s HTTP/1.1" %s %s "-" "%s"%s',
        remote or "-",
        when,
        method,
        path,
        status,
        "-" if size is None else size,
        agent or "-",
        f" error={error}" if error else "",
        extra={
            "http": {
                "method": method,
                "path": path,
                "status": status,
                "bytes": size,
                "duration_ms": duration_ms,
                "remote": remote,
                "user_agent": agent,
                "error": error,
            }
        },
    )
