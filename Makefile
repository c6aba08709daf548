# The two Quick start commands: `make demo` (serve the product) and `make test` (run the tests).
# Every install step lives here so a fresh machine needs nothing else.
VENV := .venv
PY := $(VENV)/bin/python
DEBIAN_PACKAGES := pcscd vsmartcard-vpcd opensc yubico-piv-tool libpcsclite-dev swig chromium fonts-dejavu-core
INSTANCE ?= $(CURDIR)/instance
HOST ?= 127.0.0.1
PORT ?= 5000
# The tests need a PostgreSQL server; by default the local one (trust auth, database test).
export CARDFLOW_TEST_POSTGRES_URL ?= postgresql+psycopg://postgres@127.0.0.1:5432/test

# Tests mostly wait (on engines, workers, browsers): three at a time use the two cores; the
# pcscd tests take turns through a lock file (tests/conftest.py). PYTEST_WORKERS= runs one by one.
PYTEST_WORKERS ?= -n 3

.PHONY: setup system-packages demo test lint

system-packages:
	@missing=""; for p in $(DEBIAN_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

# bpmnlint (the linter of bpmn.io and Camunda Modeler) checks processes/ in the tests.
BPMNLINT := tests/bpmnlint/node_modules/.package-lock.json
$(BPMNLINT): tests/bpmnlint/package-lock.json
	npm ci --prefix tests/bpmnlint --no-audit --no-fund --loglevel=error

# bpmn-js (the diagram viewer and modeler of the admin console) is served by the app itself.
BPMNJS := engine/web/bpmnjs/node_modules/.package-lock.json
$(BPMNJS): engine/web/bpmnjs/package-lock.json
	npm ci --prefix engine/web/bpmnjs --no-audit --no-fund --loglevel=error

# axe-core (the accessibility engine of Deque) checks every console page in the browser tests.
AXE := tests/axe/node_modules/.package-lock.json
$(AXE): tests/axe/package-lock.json
	npm ci --prefix tests/axe --no-audit --no-fund --loglevel=error

setup: system-packages $(VENV)/.installed $(BPMNLINT) $(BPMNJS) $(AXE)

demo: setup
	CARDFLOW_INSTANCE_PATH=$(INSTANCE) $(VENV)/bin/cardflow demo --host $(HOST) --port $(PORT)

test: setup
	$(VENV)/bin/ruff check engine tasks tests bench
	$(PY) -m pytest $(PYTEST_WORKERS) --durations=30 $(PYTEST_ARGS)

lint: setup
	$(VENV)/bin/ruff check engine tasks tests bench
