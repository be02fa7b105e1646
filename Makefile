# modelpilot — one Makefile for every gate. `make help` lists the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | sha256sum | cut -c1-12)
PYTEST_ARGS ?=

.PHONY: help
help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_.-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*## "}{printf "  %-18s %s\n", $$1, $$2}'

# ---- set-up ------------------------------------------------------------------------------
$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,bench]'
	@rm -f $(VENV)/.installed-* && touch $@

.PHONY: venv
venv: $(STAMP) ## create .venv and install modelpilot with its dev extras

# ---- gates -------------------------------------------------------------------------------
.PHONY: fmt
fmt: venv ## format the code
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

.PHONY: check
check: venv ## format check, lint, types, import layers, fast tests
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy -p modelpilot
	$(VENV)/bin/lint-imports
	$(PY) -m pytest -m "not mlflow and not k8s and not slow and not kind" -q $(PYTEST_ARGS)

.PHONY: test
test: venv k8s-binaries ## every test tier present (unit, services, control plane); sets itself up
	$(PY) -m pytest -m "not kind" $(PYTEST_ARGS)

# ---- control plane (built from Go modules, cached outside the repo) ----------------------
.PHONY: k8s-binaries
k8s-binaries: ## build (or reuse) etcd, kube-*, kubectl, kwok, helm from Go modules
	@bash hack/build-binaries.sh

# ---- sections filled in by each area (keep each area's targets in its block) -------------
# [control-plane targets]
# [services targets]
# [lifecycle targets]
# [operator targets]
# [delivery targets]
# [demo targets]
# [bench targets]
