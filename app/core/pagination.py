"""Opaque keyset cursors: clients pass them back, never build them."""

import base64

from app.core.errors import Invalid


def encode_cursor(value: str) -> str:
    return base64.urlsafe_b64encode(value.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except Exception:
        raise Invalid("Invalid cursor", field="cursor") from None
