#!/usr/bin/env bash
# make run: migrate, make sure an admin exists (its password printed once), serve.
set -euo pipefail
cd "$(dirname "$0")/.."
HOST="${HOST:-127.0.0.1}"
PORT="${PORT:-8000}"
.venv/bin/alembic upgrade head
.venv/bin/python -m scripts.create_admin --if-none
echo
echo "Gatehouse is starting on http://${HOST}:${PORT}"
echo "  Swagger UI (Authorize with the admin above): http://${HOST}:${PORT}/docs"
echo "  Health: http://${HOST}:${PORT}/healthz"
echo
# The access log stays on: the app filters query strings out of it (app/core/access_log.py).
exec .venv/bin/uvicorn app.main:app --host "$HOST" --port "$PORT" --no-server-header --no-proxy-headers
