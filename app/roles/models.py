"""Scopes, roles, what each role carries, and who holds which role."""

import uuid

import sqlalchemy as sa
from sqlmodel import Field, SQLModel

from app.core.models import belongs_to


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

    role_name: str = belongs_to("role.name", primary_key=True)
    scope_name: str = belongs_to("scope.name", primary_key=True, index=True)


class AccountRole(SQLModel, table=True):
    __tablename__ = "account_role"

    account_id: uuid.UUID = belongs_to("account.id", primary_key=True)
    role_name: str = belongs_to("role.name", primary_key=True, index=True)
