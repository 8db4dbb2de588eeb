# flightdeck: the two everyday commands are `make local` and `make test` (see README.md).
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STACK ?= local
PYTEST_ARGS ?=

.PHONY: local local-down local-status render setup setup-all lint typecheck unit integration e2e faults test clean

## local: deploy the local default stack (Pulumi.local.yaml) for real through the engine and print the sites
local: setup-all
	$(PY) -m tools.local up

## local-down: stop everything `make local` started (the state stays in ~/.cache/flightdeck/local)
local-down:
	bash tools/setup.sh python
	$(PY) -m tools.local down

local-status:
	$(PY) -m tools.local status

## render: dry-render a stack (objects + SQL plan in build/<stack>, sites listed); no cluster, no database
render:
	bash tools/setup.sh python
	$(PY) -m tools.render_stack $(STACK)

setup:
	bash tools/setup.sh

setup-all:
	bash tools/setup.sh all

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check components flightdeck tools tests bench policy __main__.py

typecheck: setup
	$(VENV)/bin/mypy components flightdeck tools bench __main__.py
	# a second run: the policy pack has its own __main__.py
	$(VENV)/bin/mypy policy

# The unit tier is CPU-bound and independent per test: one worker per core. The tiers on real
# parts wait on the engine and the control plane half of the time: two workers, each file (the
# fault tier as a whole) on one of them with its own rig (tests/conftest.py `fixture_scope`).
UNIT_WORKERS ?= $(shell nproc)

unit: setup
	$(PY) -m pytest -n $(UNIT_WORKERS) tests/unit $(PYTEST_ARGS)

integration: setup
	$(PY) -m pytest tests/integration $(PYTEST_ARGS)

e2e: setup-all
	$(PY) -m pytest tests/e2e $(PYTEST_ARGS)

faults: setup-all
	$(PY) -m pytest tests/faults $(PYTEST_ARGS)

## test: everything CI runs: lint, types, the unit tier, then the tiers on real parts
test: setup-all lint typecheck
	$(PY) -m pytest -n $(UNIT_WORKERS) tests/unit $(PYTEST_ARGS)
	$(PY) -m pytest -n 2 --dist loadscope --no-loadscope-reorder --durations=15 tests/integration tests/e2e tests/faults $(PYTEST_ARGS)

clean:
	rm -rf build .mypy_cache .pytest_cache .ruff_cache
