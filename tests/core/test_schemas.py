"""Response shapes built from table rows: the schema, not the table, decides
what leaves the service."""

from app.accounts.models import Account
from app.accounts.schemas import AccountPublic
from app.core.schemas import public

HASH = "$argon2id$v=19$m=1024,t=1,p=1$c2FsdA$aGFzaA"


def account() -> Account:
    return Account(username="Bob", username_key="bob", email="bob@example.com", password_hash=HASH)


def test_a_public_shape_takes_the_columns_it_names_from_the_row() -> None:
    row = account()
    shown = public(AccountPublic, row, roles=["user"], scopes=["me:read"])
    assert shown == AccountPublic(
        id=row.id,
        username="Bob",
        email="bob@example.com",
        is_active=True,
        roles=["user"],
        scopes=["me:read"],
        created_at=row.created_at,
    )


def test_a_column_the_shape_does_not_name_never_leaves() -> None:
    shown = public(AccountPublic, account(), roles=[], scopes=[])
    assert HASH not in shown.model_dump_json()
    assert "username_key" not in shown.model_dump()


def test_computed_values_win_over_columns_of_the_same_name() -> None:
    row = account()
    shown = public(AccountPublic, row, roles=[], scopes=[], username="shown-instead")
    assert shown.username == "shown-instead"
    assert row.username == "Bob"
