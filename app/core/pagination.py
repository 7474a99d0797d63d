"""Opaque keyset cursors: clients pass them back, never build them."""

import base64
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import Depends, Query

from app.core.errors import Invalid

T = TypeVar("T")
K = TypeVar("K")


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, parse: Callable[[str], K]) -> K:
    """The position a cursor names, or 422 naming the `cursor` query parameter."""
    try:
        return parse(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode())
    except ValueError:  # bad base64, bad UTF-8 and a bad position alike
        raise Invalid("Invalid cursor", field="cursor", location="query") from None


def keyset_page(
    rows: Sequence[T], limit: int, position: Callable[[T], str]
) -> tuple[list[T], str | None]:
    """Split `limit + 1` fetched rows into the page and the cursor of the next one."""
    page = list(rows[:limit])
    more = len(rows) > limit and bool(page)
    return page, encode_cursor(position(page[-1])) if more else None


@dataclass(frozen=True, slots=True)
class PageRequest:
    limit: int
    cursor: str | None


async def _page_request(  # async: no thread-pool hand-off (see app.state)
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> PageRequest:
    return PageRequest(limit=limit, cursor=cursor)


# Every list takes `limit` (1 to 100, default 50) and the `cursor` of the page before.
PageQuery = Annotated[PageRequest, Depends(_page_request)]
