# The verbs people and CI use. `make` alone lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.install-stamp
ROOT   ?= .stack
# Material prints a notice about MkDocs 2 on every build; the build itself is what we check.
export NO_MKDOCS_2_WARNING := 1
# Python keeps compiled modules (__pycache__, ignored by git) even where the environment asks it not to: every test
# process, command and kernel would otherwise compile the package and pytest rewrite every test module again.
unexport PYTHONDONTWRITEBYTECODE
STORE  ?= file
# pytest-xdist workers of `make test`, each test file on one worker (its module stacks start once); more than the
# cores, because much of a run is spent waiting on servers, kernels and timeouts.
TEST_WORKERS ?= 3

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP) ## Create .venv and install the project with its development tools

demo: $(STAMP) ## Game day: break the local stack every way a runbook drills, run that runbook with --execute, show the table (ALERTING=1: through Prometheus, Alertmanager and the receiver)
	$(if $(ALERTING),@scripts/install-test-tools.sh $(VENV)/bin)
	$(PY) scripts/demo.py $(if $(ALERTING),--alerting)

test-tools: $(STAMP) ## Put the system tools the tests use in place when missing (promtool, Chromium, PostgreSQL)
	@scripts/install-test-tools.sh $(VENV)/bin

test: $(STAMP) test-tools ## Run everything CI runs: unit, stack and docs tests (in parallel, TEST_WORKERS=3), then the strict docs build
	$(VENV)/bin/pytest -n $(TEST_WORKERS) --dist loadfile
	$(MAKE) docs

test-fast: $(STAMP) ## The edit-test loop: pure unit tests (no process, stack, site build or browser), in seconds
	$(VENV)/bin/pytest -q -n auto -m "not stack and not slow and not docs and not subprocess"

docs: $(STAMP) ## Build the site strictly into site/
	$(VENV)/bin/mkdocs build --strict

serve: $(STAMP) ## Serve the docs on http://127.0.0.1:8000
	$(VENV)/bin/mkdocs serve -a 127.0.0.1:8000

bench: $(STAMP) ## Benchmarks of the checks, each against a baseline measured in the same run (every table printed; fails at the end when a target was missed)
	@missed=""; for b in checks runbooks eval scale alerting; do \
	  $(PY) bench/bench_$$b.py || missed="$$missed bench_$$b.py"; done; \
	if [ -n "$$missed" ]; then echo "targets missed in:$$missed"; exit 1; fi

soak: $(STAMP) ## Kill -9 trials and concurrent writers on both stores (KILLS=120 WRITERS=50), INCIDENTS=300 generated incidents against a client's truth (their counts to the reliability page), RESPONDERS=10 racing runbooks, kills mid-fix, the receiver beside IDLE=300 idle sockets for SOAK_SECONDS=120
	$(PY) bench/soak.py --kills $(or $(KILLS),120) --writers $(or $(WRITERS),50)
	PROPERTY_EXAMPLES=$(or $(INCIDENTS),300) PROPERTY_RECORD=1 $(VENV)/bin/pytest -q -s tests/runbooks/test_incident_properties.py -k never_wrong
	RESPONDERS=$(or $(RESPONDERS),10) $(VENV)/bin/pytest -q tests/runbooks/test_responders.py tests/runbooks/test_crash_mid_fix.py
	RECEIVER_IDLE=$(or $(IDLE),300) RECEIVER_SOAK_SECONDS=$(or $(SOAK_SECONDS),120) $(VENV)/bin/pytest -q -s tests/alerts/test_under_attack.py -k idle_connections

cli-reference: $(STAMP) ## Regenerate docs/reference/cli.md and the exit-code table from the recsys-checks code
	$(PY) scripts/gen_cli_reference.py

notebooks: $(STAMP) ## Regenerate notebooks/ID.ipynb from runbooks/ID.yaml (a test fails when they differ)
	$(PY) -m recsys_checks.runbooks.notebook

lint: $(STAMP) ## Static checks
	$(VENV)/bin/ruff check recsys_checks recsys_stack handbook_site tests scripts bench

stack-up: $(STAMP) ## Start the local stack in the background (ROOT=.stack STORE=file|s3)
	$(VENV)/bin/recsys-stack up --detach --root $(ROOT) --store $(STORE)

stack-down: $(STAMP) ## Stop the local stack started by stack-up
	$(VENV)/bin/recsys-stack down --root $(ROOT)

.PHONY: help install demo test-tools test test-fast docs serve bench soak cli-reference notebooks lint stack-up stack-down
