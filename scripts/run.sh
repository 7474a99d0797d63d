#!/usr/bin/env bash
# make run: migrate, make sure an admin exists (a generated password is printed
# once, as the last thing before the server starts), serve.
#   HOST  address to listen on (default 127.0.0.1)
#   PORT  port to listen on (default 8000)
# In development with GATEHOUSE_ISSUER unset, the issuer (the `iss` of tokens and
# of /.well-known/oauth-authorization-server) is http://localhost:$PORT.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/gatehouse serve --migrate --ensure-admin --host "${HOST:-127.0.0.1}" --port "${PORT:-8000}"
