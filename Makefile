# One entry point; each target is thin over the `gatehouse` command or scripts/.
# `make` alone lists the targets.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/pip install --quiet --disable-pip-version-check
# Serving needs the runtime dependencies only; tests and linters add the dev extra.
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev
# Where `make run` listens; the development issuer follows it.
HOST ?= 127.0.0.1
PORT ?= 8000

.DEFAULT_GOAL := help
.PHONY: help install run test lint format migrate bench rotate-key create-admin \
	reset-password check-config calibrate openapi clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-z-]+:.*## / {printf "  make %-15s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(RUN_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) -e .
	touch $@

$(DEV_STAMP): pyproject.toml | $(BIN)/python
	$(PIP) -e '.[dev]'
	touch $(RUN_STAMP) $@

install: $(DEV_STAMP) ## create .venv with everything for development (tests, linters)

run: $(RUN_STAMP) ## migrate, create an admin if none (password printed), serve on HOST:PORT (127.0.0.1:8000)
	HOST='$(HOST)' PORT='$(PORT)' scripts/run.sh

test: $(DEV_STAMP) ## every test, on SQLite and PostgreSQL
	scripts/test.sh

lint: $(DEV_STAMP) ## ruff check, ruff format --check, mypy --strict on app/
	$(BIN)/ruff check app tests scripts alembic
	$(BIN)/ruff format --check app tests scripts alembic
	$(BIN)/mypy app tests
	$(BIN)/lint-imports

format: $(DEV_STAMP) ## ruff format and ruff check --fix
	$(BIN)/ruff format app tests scripts alembic
	$(BIN)/ruff check --fix app tests scripts alembic

migrate: $(RUN_STAMP) ## create or upgrade the schema of GATEHOUSE_DATABASE_URL
	$(BIN)/gatehouse migrate

# The peer of `make bench`, fastapi-users, lives in an environment of its own: its
# SQLAlchemy adapter pins SQLAlchemy < 2.1, which Gatehouse's .venv is past.
BENCH_VENV := .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.installed

$(BENCH_STAMP): scripts/bench/peer-requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r scripts/bench/peer-requirements.txt
	touch $@

bench: $(DEV_STAMP) $(BENCH_STAMP) ## benchmarks against real uvicorn processes, issue 15's targets last (minutes)
	@if ! command -v wrk >/dev/null 2>&1 && [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Debian's wrk for the throughput rows..."; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null) \
			|| echo "could not install wrk; the bench says which rows need it"; \
	fi
	$(BIN)/python -m scripts.bench $(BENCH_ARGS)

rotate-key: $(RUN_STAMP) ## new signing key; old ones verify until their tokens expire
	$(BIN)/gatehouse rotate-key

create-admin: $(RUN_STAMP) ## add an admin account: make create-admin [USERNAME=name]
	$(BIN)/gatehouse create-admin $(if $(USERNAME),'$(USERNAME)')

reset-password: $(RUN_STAMP) ## new password for an account, shown once: make reset-password USERNAME=name
	@test -n '$(USERNAME)' || { echo 'usage: make reset-password USERNAME=name' >&2; exit 2; }
	$(BIN)/gatehouse reset-password '$(USERNAME)'

check-config: $(RUN_STAMP) ## list every configuration problem, or what the service would run with
	$(BIN)/gatehouse check-config

calibrate: $(RUN_STAMP) ## argon2id settings for about 250 ms per hash on this machine
	$(BIN)/gatehouse calibrate

openapi: $(RUN_STAMP) ## write docs/openapi.json and regenerate the reference in docs/api.md
	$(BIN)/gatehouse openapi --output docs/openapi.json --markdown docs/api.md

clean: ## remove .venv and caches (keeps ./data)
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .ruff_cache .mypy_cache
