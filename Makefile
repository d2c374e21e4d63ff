# Onboard: `make run` starts the app, `make test` runs the whole suite (browser tests included).
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
TOOLS := .tools
BUN_VERSION := 1.4.4
OIDC_MOCK := $(TOOLS)/node_modules/oauth2-mock-server/package.json
OIDC_MOCK_VERSION := 7.2.1
AXE := $(TOOLS)/node_modules/axe-core/axe.min.js
AXE_VERSION := 4.14.1
# bun from PATH when present, else from npm into .tools (never a script download). rxconfig.py
# finds either and sets what Reflex reads (REFLEX_BUN_PATH, REFLEX_DIR in .tools, npm's registry),
# so plain `reflex run` in the activated virtualenv works the same as `make run`.
BUN := $(or $(shell command -v bun 2>/dev/null),$(CURDIR)/$(TOOLS)/node_modules/.bin/bun)
CHROMIUM ?= $(firstword $(wildcard /usr/bin/chromium /usr/bin/chromium-browser))
WORKERS ?= 1

export PYTHONDONTWRITEBYTECODE := 1

.PHONY: help install run run-prod test lint format bench migrate migration clean chromium

help: ## Show the targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { echo "Python 3.11+ is required (set PYTHON=...)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

$(BUN):
	@command -v npm >/dev/null || { echo "npm is required to install bun (from your npm registry)"; exit 1; }
	npm install --prefix $(TOOLS) --no-audit --no-fund --silent bun@$(BUN_VERSION)

# A real OpenID Connect server for the OAuth tests (runs on Node 20).
$(OIDC_MOCK):
	npm install --prefix $(TOOLS) --no-audit --no-fund --silent oauth2-mock-server@$(OIDC_MOCK_VERSION)

# The accessibility engine the browser tests inject into each page (tests/e2e/test_accessibility.py).
$(AXE):
	npm install --prefix $(TOOLS) --no-audit --no-fund --silent axe-core@$(AXE_VERSION)

install: $(VENV)/.installed $(BUN) ## Virtualenv and bun; then `source .venv/bin/activate` and `reflex run` work
	@echo "Ready: source $(VENV)/bin/activate, then reflex run (or reflex run --env prod)"

migrate: $(VENV)/.installed ## Bring the database to the newest schema
	$(PY) -m onboard_app.cli migrate

run: install migrate ## Run the app in development (http://localhost:3000)
	$(VENV)/bin/reflex run

run-prod: install ## Run the production build (WORKERS=N backend workers; N>1 needs ONBOARD_REDIS_URL)
	@if [ "$(WORKERS)" != 1 ] && [ -z "$$ONBOARD_REDIS_URL" ]; then echo "WORKERS=$(WORKERS) needs ONBOARD_REDIS_URL: workers share state through Redis"; exit 1; fi
	ONBOARD_ENV=production $(PY) -m onboard_app.cli migrate
	ONBOARD_ENV=production GRANIAN_WORKERS=$(WORKERS) $(VENV)/bin/reflex run --env prod

chromium:
	@if [ -n "$(CHROMIUM)" ] && [ -x "$(CHROMIUM)" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	else \
		echo "Browser tests need Chromium: install it (Debian: apt-get install chromium) or set CHROMIUM=/path/to/chromium"; exit 1; \
	fi

test: $(VENV)/.installed-test $(BUN) $(OIDC_MOCK) $(AXE) chromium ## Run the whole test suite, browser tests included
	CHROMIUM=$(or $(CHROMIUM),/usr/bin/chromium) $(PY) -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-test ## ruff (lint + format check) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

format: $(VENV)/.installed-test ## Format and fix what ruff can
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: $(VENV)/.installed-test $(BUN) ## Benchmarks, not part of the test suite (BENCH_ARGS="--users 200" for the target run)
	$(PY) bench/run_all.py $(BENCH_ARGS)

migration: $(VENV)/.installed ## Generate a migration after changing models.py (MESSAGE=...)
	$(VENV)/bin/reflex db makemigrations --message "$(or $(MESSAGE),schema change)"

clean: ## Remove build output and local tools (keeps the database and dev key)
	rm -rf .web $(TOOLS) .pytest_cache .mypy_cache .ruff_cache
