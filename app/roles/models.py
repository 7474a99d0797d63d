"""Scopes, roles, what each role carries, and who holds which role."""

import uuid
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, SQLModel


def _name_key(table: str, *, index: bool = False) -> Any:
    """Part of a link table's primary key: the name of a role or scope, whose
    deletion takes the link with it."""
    return Field(
        sa_column=sa.Column(
            sa.String(64),
            sa.ForeignKey(f"{table}.name", ondelete="CASCADE"),
            primary_key=True,
            index=index,
        )
    )


class Scope(SQLModel, table=True):
    __tablename__ = "scope"

    name: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    description: str = Field(default="", sa_column=sa.Column(sa.String(255), nullable=False))
    builtin: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False))


class Role(SQLModel, table=True):
    __tablename__ = "role"

    name: str = Field(sa_column=sa.Column(sa.String(64), primary_key=True))
    description: str = Field(default="", sa_column=sa.Column(sa.String(255), nullable=False))
    builtin: bool = Field(default=False, sa_column=sa.Column(sa.Boolean, nullable=False))


class RoleScope(SQLModel, table=True):
    __tablename__ = "role_scope"

    role_name: str = _name_key("role")
    scope_name: str = _name_key("scope", index=True)


class AccountRole(SQLModel, table=True):
    __tablename__ = "account_role"

    account_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid, sa.ForeignKey("account.id", ondelete="CASCADE"), primary_key=True
        )
    )
    role_name: str = _name_key("role", index=True)
