"""Log lines in text or JSON (`GATEHOUSE_LOG_FORMAT`), each carrying the request
id of the request it belongs to.

What is logged is chosen, never dumped: a request line has the method, the
route template, the status, the duration and the client address (no path
parameters, no query string, no header); a security event has its action, actor
id and address. So no password, token, secret or cookie can reach the log.
"""

import json
import logging
import time
from contextvars import ContextVar
from typing import Any

REQUEST_ID: ContextVar[str | None] = ContextVar("gatehouse_request_id", default=None)
access = logging.getLogger("gatehouse.access")
security = logging.getLogger("gatehouse.audit")


def _timestamp(record: logging.LogRecord) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{seconds}.{int(record.msecs):03d}Z"


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, and
    the record's `fields`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id:
            entry["request_id"] = request_id
        fields = getattr(record, "fields", None)
        if fields:
            entry.update(fields)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        request_id = REQUEST_ID.get()
        return f"{line} request_id={request_id}" if request_id else line


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


def logging_config(log_format: str) -> dict[str, Any]:
    """`logging.config.dictConfig` for `gatehouse serve` (uvicorn's `log_config`):
    uvicorn's own lines in the same format, its access log off (it would write
    query strings; the app writes its own request lines), SQLAlchemy quiet."""
    kind = "JsonFormatter" if log_format == "json" else "TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"gatehouse": {"()": f"app.observability.logs.{kind}"}},
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "gatehouse",
                "stream": "ext://sys.stderr",
            }
        },
        "root": {"handlers": ["stderr"], "level": "WARNING"},
        "loggers": {
            "gatehouse": {"level": "INFO"},
            "uvicorn": {"level": "INFO"},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"level": "WARNING", "propagate": False},
        },
    }


def ensure_configured(log_format: str) -> None:
    """When nothing configured logging (`uvicorn app.main:app` run directly), give
    the `gatehouse` loggers a handler in the configured format; otherwise leave
    the host's configuration (`gatehouse serve`'s, pytest's) alone."""
    root = logging.getLogger()
    ours = logging.getLogger("gatehouse")
    if root.handlers or ours.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(formatter(log_format))
    ours.addHandler(handler)
    ours.setLevel(logging.INFO)


def request_line(method: str, route: str, status: int, seconds: float, ip: str | None) -> None:
    duration_ms = round(seconds * 1000, 2)
    access.info(
        "%s %s %d %.2fms %s",
        method,
        route,
        status,
        duration_ms,
        ip or "-",
        extra={
            "fields": {
                "method": method,
                "route": route,
                "status": status,
                "duration_ms": duration_ms,
                "client": ip,
            }
        },
    )


def security_event(action: str, actor: str | None, ip: str | None) -> None:
    security.info(
        "%s actor=%s ip=%s",
        action,
        actor or "-",
        ip or "-",
        extra={"fields": {"event": action, "actor": actor, "client": ip}},
    )
