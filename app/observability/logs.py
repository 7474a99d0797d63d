"""Log lines in text or JSON (`GATEHOUSE_LOG_FORMAT`), each carrying the request
id of the request it belongs to.

What is logged is chosen, never dumped: a request line has the method, the
route template, the status, the duration and the client address (no path
parameters, no query string, no header); a security event has its action, actor
id and address. So no password, token, secret or cookie can reach the log.
"""

import atexit
import json
import logging
import sys
import time
from contextvars import ContextVar
from logging.handlers import QueueHandler, QueueListener
from queue import SimpleQueue
from typing import Any

REQUEST_ID: ContextVar[str | None] = ContextVar("gatehouse_request_id", default=None)
access = logging.getLogger("gatehouse.access")
security = logging.getLogger("gatehouse.audit")


def _request_id(record: logging.LogRecord) -> str | None:
    """The request id the record was made under: kept on the record when it is
    handed to the writing thread (`Deferred`), else the current one."""
    if "request_id" in record.__dict__:
        return record.__dict__["request_id"]  # type: ignore[no-any-return]
    return REQUEST_ID.get()


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
        request_id = _request_id(record)
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
        request_id = _request_id(record)
        return f"{line} request_id={request_id}" if request_id else line


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else TextFormatter()


class Deferred(QueueHandler):
    """Hands each record to a thread that formats and writes it with `handler`.
    Writing a log line to stderr is blocking I/O, and with the access log on
    there is one per request: it must not run on the event loop, where a slow
    or full stderr (a pipe to a log shipper) would stall every request. The record
    keeps its request id, which the writing thread cannot read from the
    request's context. What is queued at exit is still written: the listener
    drains the queue when it stops."""

    def __init__(self, handler: logging.Handler):
        queue: SimpleQueue[logging.LogRecord] = SimpleQueue()
        super().__init__(queue)
        self.listener = QueueListener(queue, handler, respect_handler_level=True)
        self.listener.start()
        atexit.register(self.listener.stop)

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        # In-process: the record itself goes over, unformatted (QueueHandler's own
        # prepare formats it here and drops exc_info, which pickling would need).
        record.request_id = REQUEST_ID.get()
        return record


def stderr_handler(log_format: str) -> logging.Handler:
    """Lines in `log_format` on stderr, written off the event loop."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    return Deferred(handler)


def logging_config(log_format: str) -> dict[str, Any]:
    """`logging.config.dictConfig` for `gatehouse serve` (uvicorn's `log_config`):
    uvicorn's own lines in the same format, its access log off (it would write
    query strings; the app writes its own request lines), SQLAlchemy quiet."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "handlers": {
            "stderr": {"()": "app.observability.logs.stderr_handler", "log_format": log_format}
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
    ours.addHandler(stderr_handler(log_format))
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
