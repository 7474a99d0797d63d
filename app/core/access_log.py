"""The access log names paths, never query strings.

A client may put a secret where it does not belong (`?access_token=eyJ...`, a
password in a form sent as a query); uvicorn's access log writes the path with
its query string as sent, and logs are read by more people than tokens should
be. The filter sits on uvicorn's `uvicorn.access` logger itself, so it applies
however uvicorn is started (scripts/run.sh, the Dockerfile, a user's command).
"""

import logging

ACCESS_LOGGER = "uvicorn.access"


class DropQueryString(logging.Filter):
    """Cuts the query string off the path argument of uvicorn's access record
    (`'%s - "%s %s HTTP/%s" %d'`: client, method, path, version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def install() -> None:
    """Add the filter once, however many apps this process creates."""
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, DropQueryString) for f in logger.filters):
        logger.addFilter(DropQueryString())
