"""The ceiling of `make bench`: a bare FastAPI app verifying the very RS256
access token Gatehouse issued, with python-jose, and no database.

    BENCH_JWKS='{"keys": [...]}' BENCH_ISSUER=... BENCH_AUDIENCE=... \
        uvicorn scripts.bench.ceiling:app

Whatever Gatehouse does on a protected request beyond this (liveness, account
read, serialisation) is the cost its targets are measured against. Nothing of
Gatehouse is imported: this is what a FastAPI team writes in ten lines.
"""

import json
import os
from typing import Any

from fastapi import FastAPI, Header, HTTPException
from jose import jwt

JWKS: dict[str, Any] = json.loads(os.environ.get("BENCH_JWKS", '{"keys": []}'))
ISSUER = os.environ.get("BENCH_ISSUER", "")
AUDIENCE = os.environ.get("BENCH_AUDIENCE", "")

app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)


@app.get("/healthz")
async def healthz() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/me")
async def me(authorization: str = Header(default="")) -> dict[str, Any]:
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HTTPException(401)
    try:
        claims = jwt.decode(token, JWKS, algorithms=["RS256"], audience=AUDIENCE, issuer=ISSUER)
    except Exception as exc:  # any failure is a 401, as in any resource server
        raise HTTPException(401) from exc
    return {"sub": claims["sub"], "scope": claims["scope"]}
