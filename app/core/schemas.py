"""Shapes every concept's schemas build on: input cleaning, strictness, pages."""

from typing import Annotated, Any, Generic, TypeVar

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from sqlmodel import SQLModel


def refuse_unstorable(value: str) -> str:
    # NUL and lone surrogates are refused here, the same on PostgreSQL (which
    # cannot store NUL) and SQLite, before they reach a database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


Description = Annotated[
    str, StringConstraints(min_length=0, max_length=255), AfterValidator(refuse_unstorable)
]
# PostgreSQL cannot compare text with NUL in it: path and query parameters refuse
# it with 422 rather than a 500.
NO_NUL = r"^[^\x00]*$"


class Strict(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


T = TypeVar("T")


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None


class Status(BaseModel):
    status: str


P = TypeVar("P", bound=BaseModel)


def public(schema: type[P], row: SQLModel, **computed: Any) -> P:
    """A response shape filled from a table row's columns of the same names, and
    from `computed` for the rest: the schema, not the table, decides what is shown
    (a column it does not name, such as a password hash, never leaves)."""
    shown = set(schema.model_fields) - computed.keys()
    return schema.model_validate({**row.model_dump(include=shown), **computed})
