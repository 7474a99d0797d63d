from typing import Annotated

from fastapi import Path, Query, Response, status

from app.authz.dependencies import AUTH_ERRORS, ClientsRead, ClientsWrite
from app.clients import service as clients_service
from app.clients.schemas import (
    ClientCreate,
    ClientCreated,
    ClientPublic,
    ClientSecret,
    ClientUpdate,
    SecretRotation,
)
from app.core.db import DbSession, transactional_router
from app.core.errors import answers
from app.core.schemas import NO_NUL, Page
from app.state import SettingsDep

router = transactional_router("/clients", tag="clients", responses=AUTH_ERRORS)

ClientIdParam = Annotated[str, Path(max_length=64, pattern=NO_NUL)]
NOT_FOUND = {404: "No such client (or role)"}
# A client secret is in the body: no cache may keep it.
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}


@router.get("")
async def list_clients(
    _: ClientsRead,
    db: DbSession,
    settings: SettingsDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> Page[ClientPublic]:
    """Registered clients, a page at a time."""
    return await clients_service.list_clients(db, settings=settings, limit=limit, cursor=cursor)


@router.post("", status_code=status.HTTP_201_CREATED, responses=answers(NOT_FOUND))
async def register_client(
    body: ClientCreate,
    actor: ClientsWrite,
    db: DbSession,
    settings: SettingsDep,
    response: Response,
) -> ClientCreated:
    """Register a client; a confidential one's secret is in this answer only.
    Giving it roles needs every scope they carry."""
    response.headers.update(NO_STORE)
    return await clients_service.create_client(db, actor=actor, settings=settings, new=body)


@router.get("/{client_id}", responses=answers(NOT_FOUND))
async def read_client(
    client_id: ClientIdParam, _: ClientsRead, db: DbSession, settings: SettingsDep
) -> ClientPublic:
    """One client."""
    return await clients_service.get_client(db, settings=settings, client_id=client_id)


@router.patch(
    "/{client_id}",
    responses=answers(NOT_FOUND, {409: "The built-in client can only be switched on or off"}),
)
async def update_client(
    client_id: ClientIdParam,
    body: ClientUpdate,
    actor: ClientsWrite,
    db: DbSession,
    settings: SettingsDep,
) -> ClientPublic:
    """Change a client; its tokens follow from the next request."""
    return await clients_service.update_client(
        db, actor=actor, settings=settings, client_id=client_id, change=body
    )


@router.delete(
    "/{client_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=answers(NOT_FOUND, {409: "Built-in client"}),
)
async def delete_client(client_id: ClientIdParam, actor: ClientsWrite, db: DbSession) -> Response:
    """Delete a client, ending every session and token it holds."""
    await clients_service.delete_client(db, actor=actor, client_id=client_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(
    "/{client_id}/secret",
    responses=answers(NOT_FOUND, {409: "A public client has no secret"}),
)
async def rotate_client_secret(
    client_id: ClientIdParam,
    actor: ClientsWrite,
    db: DbSession,
    response: Response,
    body: SecretRotation | None = None,
) -> ClientSecret:
    """A new secret, shown once; the old one works `previous_valid_for_seconds` longer."""
    response.headers.update(NO_STORE)
    secret = await clients_service.rotate_secret(
        db,
        actor=actor,
        client_id=client_id,
        previous_valid_for_seconds=body.previous_valid_for_seconds if body else 0,
    )
    return ClientSecret(client_secret=secret)
