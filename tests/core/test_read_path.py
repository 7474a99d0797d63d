"""The hot statements' direct path (`core.db.ReadPath`, issue 15): on
PostgreSQL the same rows as through the ORM session, errors answered as
SQLAlchemy's are; and the request's session is committed by the route class."""

import base64
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI
from sqlalchemy import Executable, func, select
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlmodel import col

from app.authz.catalogue import GATEHOUSE_CLIENT
from app.clients import service as clients_service
from app.core.db import READS, DbSession, ReadPath, TransactionalRoute, create_engine, read_rows
from app.core.models import utcnow
from app.roles.models import Scope
from app.sessions import service as sessions_service
from app.sessions.service import hash_refresh_token
from tests.conftest import app_state, make_settings
from tests.factories import admin_login


def _hot_statements(
    login: dict[str, Any], account_id: uuid.UUID, session_id: uuid.UUID
) -> list[tuple[Executable, dict[str, Any]]]:
    now = utcnow()
    idle_cutoff = now - timedelta(hours=1)
    return [
        (
            sessions_service._LIVE_ACCOUNT,
            {
                "session_id": session_id,
                "account_id": account_id,
                "now": now,
                "idle_cutoff": idle_cutoff,
                "authz_version": 1,
            },
        ),
        (
            sessions_service._REFRESH_LOOKUP,
            {
                "token_hash": hash_refresh_token(login["refresh_token"]),
                "client_id": GATEHOUSE_CLIENT,
                "now": now,
                "idle_cutoff": idle_cutoff,
            },
        ),
        (clients_service._CLIENT_WITH_SCOPES, {"client_id": GATEHOUSE_CLIENT}),
    ]


async def test_the_direct_path_reads_what_the_session_reads(
    client: httpx.AsyncClient, backend: str
) -> None:
    login = await admin_login(client)
    state = app_state(client)
    me = (
        await client.get(
            "/accounts/me", headers={"Authorization": f"Bearer {login['access_token']}"}
        )
    ).json()
    claims = await state.keyring.verify(login["access_token"])
    statements = _hot_statements(login, uuid.UUID(me["id"]), uuid.UUID(claims["sid"]))
    async with state.sessionmaker() as db:
        if backend == "sqlite":  # one connection, one path: the session's
            assert db.info.get(READS) is None
            return
        reads = db.info[READS]
        assert isinstance(reads, ReadPath)
        for statement, params in statements:
            direct = [tuple(row) for row in await reads.rows(statement, params)]
            async with db.begin():
                through_orm = [tuple(row) for row in (await db.execute(statement, params)).all()]
            assert direct, statement
            assert direct == through_orm
            assert [tuple(row) for row in await read_rows(db, statement, params)] == direct
            # Same types too (UUIDs, aware datetimes, JSON lists), not only equal values.
            assert all(
                isinstance(a, type(b)) for a, b in zip(direct[0], through_orm[0], strict=True)
            )


async def test_an_outage_on_the_direct_path_is_the_same_error_as_on_the_engine(
    tmp_path: Path,
) -> None:
    settings = make_settings(
        "postgresql+asyncpg://postgres@127.0.0.1:1/none", tmp_path, db_timeout_seconds=1
    )
    engine = create_engine(settings)
    reads = ReadPath(engine, settings)
    try:
        with pytest.raises(OperationalError):
            await reads.rows(clients_service._CLIENT_WITH_SCOPES, {"client_id": "x"})
    finally:
        await reads.close()
        await engine.dispose()


async def test_refused_input_on_the_direct_path_is_a_data_error(
    client: httpx.AsyncClient, backend: str
) -> None:
    """A client id PostgreSQL cannot even compare (a NUL) is the client's error:
    the statement fails as SQLAlchemy's data errors do, and the request is
    refused as a failed client authentication, never a 500."""
    basic = base64.b64encode(b"a%00b:secret").decode()
    answer = await client.post(
        "/oauth/introspect", data={"token": "x"}, headers={"Authorization": f"Basic {basic}"}
    )
    assert answer.status_code in (401, 422), answer.text
    if backend == "sqlite":
        return
    async with app_state(client).sessionmaker() as db:
        reads = db.info[READS]
        with pytest.raises(DBAPIError) as raised:
            await reads.rows(clients_service._CLIENT_WITH_SCOPES, {"client_id": "a\x00b"})
    assert not isinstance(raised.value, OperationalError)
    assert str(getattr(raised.value.orig, "sqlstate", "")).startswith("22")


def _scope_app(sessionmaker: Any, route_class: type | None) -> FastAPI:
    app = FastAPI()
    app.state.sessionmaker = sessionmaker
    router = APIRouter(route_class=route_class) if route_class else APIRouter()

    @router.post("/scopes/{name}")
    async def add(name: str, db: DbSession, fail: bool = False) -> dict[str, str]:
        db.add(Scope(name=name))
        await db.flush()
        if fail:
            raise RuntimeError("after the write")
        return {"name": name}

    app.include_router(router)
    return app


async def _stored(db: AsyncSession, name: str) -> int:
    return int(await db.scalar(select(func.count()).where(col(Scope.name) == name)) or 0)


async def test_the_route_commits_what_it_wrote_when_it_returns_and_nothing_when_it_raises(
    client: httpx.AsyncClient,
) -> None:
    sessionmaker = app_state(client).sessionmaker
    app = _scope_app(sessionmaker, TransactionalRoute)
    kept, dropped = f"test:{uuid.uuid4().hex[:8]}", f"test:{uuid.uuid4().hex[:8]}"
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        assert (await http.post(f"/scopes/{kept}")).status_code == 200
        assert (await http.post(f"/scopes/{dropped}", params={"fail": True})).status_code == 500
    async with sessionmaker() as db:
        assert await _stored(db, kept) == 1
        assert await _stored(db, dropped) == 0


async def test_a_route_outside_the_route_class_cannot_take_a_session(
    client: httpx.AsyncClient,
) -> None:
    app = _scope_app(app_state(client).sessionmaker, None)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=True)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        with pytest.raises(RuntimeError, match="TransactionalRoute"):
            await http.post("/scopes/test:never")
