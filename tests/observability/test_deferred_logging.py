"""Log lines are written by a thread of their own (no blocking write on the event
loop), keep the request id they were made under, and are all written by exit."""

import atexit
import io
import json
import logging
import threading

from app.observability import logs


class Recording(logging.StreamHandler[io.StringIO]):
    """A stream handler that notes which thread wrote each line."""

    def __init__(self) -> None:
        super().__init__(io.StringIO())
        self.threads: list[threading.Thread] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.threads.append(threading.current_thread())
        super().emit(record)


def test_lines_are_written_off_the_calling_thread_with_their_request_id() -> None:
    target = Recording()
    target.setFormatter(logs.formatter("json"))
    handler = logs.Deferred(target)
    logger = logging.getLogger("gatehouse.test-deferred")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    try:
        for request_id in ("first-request", None, "third-request"):
            token = logs.REQUEST_ID.set(request_id)
            logger.info("line of %s", request_id, extra={"fields": {"n": 1}})
            logs.REQUEST_ID.reset(token)
        handler.listener.stop()  # drains the queue, as at exit
    finally:
        atexit.unregister(handler.listener.stop)
        logger.removeHandler(handler)
    lines = [json.loads(line) for line in target.stream.getvalue().splitlines()]
    assert [line.get("request_id") for line in lines] == ["first-request", None, "third-request"]
    assert [line["message"] for line in lines] == [
        "line of first-request",
        "line of None",
        "line of third-request",
    ]
    assert all(line["n"] == 1 for line in lines)
    assert target.threads and threading.current_thread() not in target.threads


def test_a_text_line_keeps_its_request_id_too() -> None:
    target = Recording()
    target.setFormatter(logs.formatter("text"))
    handler = logs.Deferred(target)
    record = logging.LogRecord("gatehouse", logging.INFO, __file__, 1, "hello", None, None)
    token = logs.REQUEST_ID.set("text-request")
    try:
        handler.handle(record)
    finally:
        logs.REQUEST_ID.reset(token)
        handler.listener.stop()
        atexit.unregister(handler.listener.stop)
    assert target.stream.getvalue().rstrip().endswith("hello request_id=text-request")
