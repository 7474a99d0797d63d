#!/usr/bin/env bash
# make test: every test, on SQLite and PostgreSQL. Installs what the browser
# test needs (Debian's chromium; Playwright's own browser download does not work
# in offline deployments) when it is missing and we may install it.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v chromium >/dev/null 2>&1 && [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser test..."
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
        || echo "could not install chromium; the browser test will say so"
fi
if [ "$#" -eq 0 ]; then
    # The whole suite: line coverage of app/ (floor in pyproject's [tool.coverage]).
    exec .venv/bin/pytest --cov --cov-report=term-missing
fi
exec .venv/bin/pytest "$@"
