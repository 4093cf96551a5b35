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
# The layer's requirements as this machine's wheels: the bytecode test and the cold-start
# benchmark build the layer with its own Makefile from these, without the network.
WHEELHOUSE := $(VENV)/wheelhouse
WHEELHOUSE_STAMP := $(WHEELHOUSE)/.downloaded
# The outside tools of make proof live in their own virtualenv (checkov pins its own boto3).
PROOF_VENV := .venv-proof
PROOF_STAMP := $(PROOF_VENV)/.installed
# The console (console/): built with npm from its committed lock; the local runtime serves it.
CONSOLE_STAMP := console/dist/index.html
CONSOLE_SOURCES := console/package.json console/package-lock.json console/index.html \
  console/vite.config.ts console/tsconfig.json \
  $(shell find console/src console/public -type f 2>/dev/null)
# The browser the e2e tests drive (Playwright with the system's Chromium, never a downloaded one).
CHROMIUM := $(or $(wildcard /usr/bin/chromium),$(shell command -v chromium 2>/dev/null))
export TSUNAGU_CHROMIUM := $(or $(TSUNAGU_CHROMIUM),$(CHROMIUM),/usr/bin/chromium)

.PHONY: help up test proof browser console publish-console lint typecheck static unit integration e2e bench build validate journeys docs layer-pins clean

help:
	@echo "make up     - set everything up and run Tsunagu on the embedded local AWS"
	@echo "make test   - set everything up and run every test suite and static check"
	@echo "             (installs Debian's chromium with apt-get for the browser tests if missing)"
	@echo "make bench  - print the benchmark reports (tests/benchmarks)"
	@echo "make proof  - the product under outside tools, load, faults and hostile input (figures)"
	@echo "make build  - sam build (the same template that make up runs locally)"
	@echo "make journeys - compile journeys/*.json to statemachines/ and write their JSON Schema"
	@echo "make docs   - write the admin routes into docs/openapi.yaml (from tsunagu.api.admin)"
	@echo "make layer-pins - write the layer's requirements.txt (pyproject.toml + requirements/dev.lock)"
	@echo "make console - build the console (npm ci, vite build); make up does it when needed"
	@echo "make publish-console STACK=name - the console into a deployed stack (after sam deploy)"

$(STAMP): pyproject.toml requirements/dev.lock
	@if [ -z "$(PYTHON313)" ]; then \
	  echo "Tsunagu needs Python 3.13 (the Lambda runtime). Install it (e.g. 'pyenv install 3.13')"; \
	  echo "and run this again."; exit 1; fi
	@echo "==> creating $(VENV) with $(PYTHON313)"
	@test -x $(BIN)/python || $(PYTHON313) -m venv $(VENV)
	@$(BIN)/python -m pip install --quiet -r requirements/dev.lock
	@$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	@touch $(STAMP)

$(WHEELHOUSE_STAMP): layers/tsunagu/requirements.txt | $(STAMP)
	@echo "==> downloading the layer's wheels for this machine into $(WHEELHOUSE)"
	@rm -rf $(WHEELHOUSE)
	@$(BIN)/python -m pip download --quiet --only-binary=:all: \
	  --requirement layers/tsunagu/requirements.txt --dest $(WHEELHOUSE)
	@touch $(WHEELHOUSE_STAMP)

up: $(STAMP) $(CONSOLE_STAMP)
	@$(BIN)/tsunagu-local $(ARGS)

console: $(CONSOLE_STAMP)

# After `sam deploy`: the console into the stack's bucket, behind its CloudFront distribution.
publish-console: $(STAMP) $(CONSOLE_STAMP)
	@test -n "$(STACK)" || { echo "say which stack: make publish-console STACK=tsunagu-dev"; exit 1; }
	@$(BIN)/tsunagu --stack $(STACK) console publish

$(CONSOLE_STAMP): $(CONSOLE_SOURCES)
	@if ! command -v npm >/dev/null 2>&1; then \
	  echo "The console is built with Node.js (20 or later) and npm, which this machine lacks."; \
	  echo "Install them (Debian: 'sudo apt-get install nodejs npm'; or https://nodejs.org)"; \
	  echo "and run this again."; exit 1; fi
	@echo "==> building the console (npm ci from console/package-lock.json, vite build)"
	@cd console && npm ci --no-audit --no-fund --loglevel=error && npm run --silent build

test: $(STAMP) $(WHEELHOUSE_STAMP) $(PROOF_STAMP) $(CONSOLE_STAMP) browser
	@# The static checks run beside pytest (they take one core for half a minute, while pytest's
	@# workers are still starting); make test fails if either does.
	@# Two pytest workers on the usual 2-core machine (up to 4 on a larger one): most of the suite
	@# waits on runtimes it started, so two keep both cores busy. See tests/support/scheduling.py.
	@# The benchmarks take fewer samples than make bench (tests/support/bench_report.py).
	@$(MAKE) --no-print-directory lint typecheck & checks=$$!; \
	TSUNAGU_BENCH_QUICK=1 $(BIN)/python -m pytest --numprocesses auto --maxprocesses 4 \
	  --dist loadfile --durations 10; tests=$$?; \
	wait $$checks; checks=$$?; \
	if [ $$checks -ne 0 ]; then echo "make test: lint or typecheck failed (see above)"; fi; \
	exit $$(( tests != 0 || checks != 0 ))

# Debian's chromium for the browser tests, and a Japanese font (the console's screenshots must
# show text, not boxes): installed with apt-get when missing and we are root (a fresh machine,
# CI); otherwise a plain message and a failure. The tests never skip without them.
browser:
	@have_font() { fc-list :lang=ja 2>/dev/null | grep -q .; }; \
	if [ -x "$(TSUNAGU_CHROMIUM)" ] && have_font; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "==> installing Debian's chromium and a Japanese font for the browser tests (apt-get)"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium fonts-liberation \
	    fonts-noto-cjk >/dev/null || { echo "apt-get could not install chromium and fonts-noto-cjk"; exit 1; }; \
	else \
	  echo "The browser tests need Chromium at $(TSUNAGU_CHROMIUM) and a Japanese font."; \
	  echo "install Debian's packages: sudo apt-get install chromium fonts-noto-cjk"; \
	  exit 1; \
	fi; \
	test -x "$(TSUNAGU_CHROMIUM)" || { echo "chromium is not at $(TSUNAGU_CHROMIUM) after apt-get;" \
	  "set TSUNAGU_CHROMIUM to its path"; exit 1; }

lint: $(STAMP)
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .

typecheck: $(STAMP)
	@$(BIN)/mypy
	@# Every handler module is named app: check them one at a time.
	@for handler in functions/*/app.py; do $(BIN)/mypy --strict --no-error-summary "$$handler" || exit 1; done

bench: $(STAMP) $(WHEELHOUSE_STAMP) $(CONSOLE_STAMP)
	@$(BIN)/python -m pytest tests/benchmarks -q

build: $(STAMP)
	@PATH="$(abspath $(dir $(shell command -v $(PYTHON313)))):$$PATH" SAM_CLI_TELEMETRY=0 $(BIN)/sam build

validate: $(STAMP)
	@SAM_CLI_TELEMETRY=0 $(BIN)/sam validate --lint

# The shipped journeys' ASL is generated from their definitions (tests/static checks it is).
journeys: $(STAMP)
	@$(BIN)/tsunagu journeys compile journeys/*.json --write statemachines
	@$(BIN)/tsunagu journeys schema > docs/journey-definition.schema.json

# The admin API's part of the API document is generated from its routes (tests/static checks it).
docs: $(STAMP)
	@$(BIN)/python -m tsunagu_local.admin_document docs/openapi.yaml

# What `sam build` installs into the layer is generated: pyproject.toml's dependencies and all
# they need, at requirements/dev.lock's versions (tests/static checks it is).
layer-pins: $(STAMP)
	@$(BIN)/python -m tsunagu_local.layer_pins layers/tsunagu/requirements.txt

clean:
	rm -rf $(VENV) $(PROOF_VENV) .aws-sam .tsunagu .pytest_cache .mypy_cache .ruff_cache \
	  console/node_modules console/dist

$(PROOF_STAMP): requirements/proof.lock
	@echo "==> creating $(PROOF_VENV) with $(PYTHON313)"
	@test -x $(PROOF_VENV)/bin/python || $(PYTHON313) -m venv $(PROOF_VENV)
	@$(PROOF_VENV)/bin/python -m pip install --quiet -r requirements/proof.lock
	@touch $(PROOF_STAMP)

proof: $(STAMP) $(PROOF_STAMP)
	@$(BIN)/python -m tests.proof $(ARGS)
