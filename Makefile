# The two commands a new user needs:  make up   and   make test
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV := .venv
BIN := $(VENV)/bin
# python3.13 from PATH, else from pyenv's versions folder (pyenv's shim refuses when 3.13 is not
# the selected version), else a clear message.
PYTHON313 := $(shell \
  for p in python3.13 $$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13 2>/dev/null | sort -V -r); do \
    if "$$p" -c 'import sys; assert sys.version_info[:2] == (3, 13)' >/dev/null 2>&1; then echo "$$p"; break; fi; \
  done)
STAMP := $(VENV)/.installed

.PHONY: help up test lint typecheck static unit integration e2e bench build validate clean

help:
	@echo "make up     - set everything up and run Tsunagu on the embedded local AWS"
	@echo "make test   - set everything up and run every test suite and static check"
	@echo "make bench  - print the benchmark reports (tests/benchmarks)"
	@echo "make build  - sam build (the same template that make up runs locally)"

$(STAMP): pyproject.toml requirements/dev.lock
	@if [ -z "$(PYTHON313)" ]; then \
	  echo "Tsunagu needs Python 3.13 (the Lambda runtime). Install it (e.g. 'pyenv install 3.13')"; \
	  echo "and run this again."; exit 1; fi
	@echo "==> creating $(VENV) with $(PYTHON313)"
	@test -x $(BIN)/python || $(PYTHON313) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet -r requirements/dev.lock
	@$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

up: $(STAMP)
	@$(BIN)/tsunagu-local $(ARGS)

test: $(STAMP)
	@$(MAKE) --no-print-directory lint typecheck
	@$(BIN)/python -m pytest

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

typecheck: $(STAMP)
	@$(BIN)/mypy
	@# Every handler module is named app: check them one at a time.
	@for handler in functions/*/app.py; do $(BIN)/mypy --strict --no-error-summary "$$handler" || exit 1; done

bench: $(STAMP)
	@$(BIN)/python -m pytest tests/benchmarks -q

build: $(STAMP)
	@PATH="$(dir $(PYTHON313)):$$PATH" $(BIN)/sam build

validate: $(STAMP)
	@SAM_CLI_TELEMETRY=0 $(BIN)/sam validate --lint

clean:
	rm -rf $(VENV) .aws-sam .tsunagu .pytest_cache .mypy_cache .ruff_cache
