# IAM Portal. `make run` serves the console with demo data; `make test` runs everything.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PYTEST := $(PY) -m pytest
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run migrate seed test lint format test-deps test-sqlite test-postgres test-browser bench bench-scale clean

install: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

run: seed
	@echo "Serving IAM Portal on http://$(HOST):$(PORT)/ (Ctrl-C to stop)"
	$(PY) manage.py runserver $(HOST):$(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

test: lint test-sqlite test-postgres test-browser

# The test OpenID provider (npm oidc-provider, pinned by its package-lock.json) that
# tests/federation start on loopback.
test-deps:
	./scripts/system-deps
	./scripts/test-idp-install

test-sqlite: install test-deps
	env -u DATABASE_URL $(PY) manage.py makemigrations --check --dry-run
	env -u DATABASE_URL $(PYTEST) -m "not browser" -q

# Against DATABASE_URL when it names PostgreSQL, else a throwaway local cluster.
test-postgres: install test-deps
	@if echo "$$DATABASE_URL" | grep -q '^postgres'; then \
		$(PYTEST) -m "not browser" -q; \
	else \
		./scripts/system-deps && ./scripts/pg-throwaway $(PYTEST) -m "not browser" -q; \
	fi

test-browser: install test-deps
	env -u DATABASE_URL $(PYTEST) -m browser -q

# Each bench file runs on its own and ends with its `BENCH ...` line; the audit trail's
# and the API's need PostgreSQL (DATABASE_URL when it names one, else a throwaway local
# cluster). bench_api.py serves the API with gunicorn on its own `test_` database.
BENCH_RUN = $(PYTEST) benchmarks/bench_evaluator.py --benchmark-only -q \
	&& $(PYTEST) benchmarks/bench_audit.py --benchmark-only -q \
	&& $(PYTEST) benchmarks/bench_who_can.py --benchmark-only -q -s \
	&& $(PY) benchmarks/bench_api.py
bench: install
	@if echo "$$DATABASE_URL" | grep -q '^postgres'; then \
		sh -c '$(BENCH_RUN)'; \
	else \
		./scripts/system-deps && ./scripts/pg-throwaway sh -c '$(BENCH_RUN)'; \
	fi

# Every main page on one organization of 10,000 users, 1M audit events (issue #15):
# seed_scale, gunicorn (2 workers) and a load generator; BENCH_SCALE_SIZE=small for a
# quick run. Exits non-zero when a budget is missed.
bench-scale: install
	@if echo "$$DATABASE_URL" | grep -q '^postgres'; then \
		$(PY) benchmarks/bench_scale.py; \
	else \
		./scripts/system-deps && ./scripts/pg-throwaway $(PY) benchmarks/bench_scale.py; \
	fi

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
