# One entry point; each target is thin over scripts/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install run test lint format migrate bench rotate-key create-admin clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install          ## migrate, ensure an admin (printed once), serve on SQLite
	scripts/run.sh

test: install         ## every test, on SQLite and PostgreSQL
	scripts/test.sh

lint: install
	$(BIN)/ruff check app tests scripts alembic
	$(BIN)/ruff format --check app tests scripts alembic
	$(BIN)/mypy app tests
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format app tests scripts alembic
	$(BIN)/ruff check --fix app tests scripts alembic

migrate: install
	$(BIN)/alembic upgrade head

bench: install
	$(BIN)/python -m scripts.bench

rotate-key: install   ## new signing key; old ones verify until their tokens expire
	$(BIN)/python -m scripts.rotate_key

create-admin: install ## create an admin account (production bootstrap)
	$(BIN)/python -m scripts.create_admin

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache
