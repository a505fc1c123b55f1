# shield-orchestrator: one target per habit. Every target installs what it needs on first use
# (scripts/bootstrap.sh: Debian packages + .venv from pinned requirements); second runs are no-ops.
#   make sandbox   the main job: local systemd host, full deploy, a real ingestion
#   make test      everything CI runs
SHELL := /bin/bash
.DEFAULT_GOAL := help

VENV       ?= .venv
BUILD      ?= build
BIN        := $(VENV)/bin
VENV_STAMP := $(VENV)/.ready
RENDERED   := $(BUILD)/rendered
STAGE      := scripts/stage.sh
# roles: the plain app modules (roles/*/files/shield_orchestrator) are linted where they are
# scripts/shieldctl has no .py suffix: ruff checks it when named
PY_SOURCES  = $(wildcard tests bench scripts scripts/shieldctl molecule roles harness collections/ansible_collections/shield)
export ANSIBLE_CONFIG := $(CURDIR)/ansible.cfg
export PATH := $(CURDIR)/$(BIN):$(PATH)

.PHONY: help venv render lint typecheck pytest test-fast test bench molecule sandbox sandbox-down lock clean

help: ## list the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

$(VENV_STAMP): scripts/bootstrap.sh requirements/app.in requirements/dev.in requirements/constraints.txt
	@VENV=$(VENV) scripts/bootstrap.sh
	@touch $@

venv: $(VENV_STAMP) ## Debian packages + the project venv

RENDER_INPUTS := $(shell find roles -path '*shield_orchestrator*' -type f 2>/dev/null) \
  $(wildcard roles/*/defaults/main.yml roles/*/vars/main.yml roles/*/tasks/render_app.yml) \
  playbooks/render.yml tests/render/alt_values.yml
RENDER_STAMP := $(RENDERED)/.stamp

render: $(RENDER_STAMP) ## render every *.py.j2 with the role defaults (no inventory) and with tests/render/alt_values.yml

$(RENDER_STAMP): $(VENV_STAMP) $(RENDER_INPUTS)
	@rm -rf $(RENDERED) && mkdir -p $(RENDERED)
	@# The two trees render side by side (one ansible-playbook each: a single-threaded
	@# controller, so two use both cores); either failing fails the target with its log's tail.
	@for v in default alt; do \
	  extra=; [ $$v = alt ] && extra="-e @tests/render/alt_values.yml"; \
	  $(BIN)/ansible-playbook -i localhost, playbooks/render.yml -e render_root=$(CURDIR)/$(RENDERED)/$$v $$extra \
	    >$(RENDERED)/render-$$v.log 2>&1 & \
	  eval "pid_$$v=$$!"; \
	done; \
	failed=; \
	for v in default alt; do \
	  eval "wait \$$pid_$$v" || { tail -40 $(RENDERED)/render-$$v.log; failed=1; }; \
	done; \
	[ -z "$$failed" ]
	@touch $@
	@echo "render: $(RENDERED)/default and $(RENDERED)/alt"

lint: $(VENV_STAMP) render ## ruff (sources and rendered trees), yamllint, ansible-lint (production profile)
	$(BIN)/ruff check $(PY_SOURCES) $(RENDERED)/default $(RENDERED)/alt
	$(BIN)/ruff format --check $(PY_SOURCES) $(RENDERED)/default
	$(BIN)/yamllint --strict .
	$(BIN)/ansible-lint --profile production --offline -q

typecheck: $(VENV_STAMP) render ## mypy --strict on both rendered trees
	cd $(RENDERED)/default && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p shield_orchestrator
	cd $(RENDERED)/alt && $(CURDIR)/$(BIN)/mypy --config-file $(CURDIR)/pyproject.toml -p shield_orchestrator

PYTEST := $(BIN)/pytest -p no:cacheprovider
pytest: $(VENV_STAMP) render ## pytest: everything on the default tree, unit+integration on the alt tree
	SHIELD_RENDERED=$(CURDIR)/$(RENDERED)/default $(PYTEST) tests -m "not molecule"
	SHIELD_RENDERED=$(CURDIR)/$(RENDERED)/alt $(PYTEST) tests/unit tests/integration \
	  tests/render/test_rendered_constants.py tests/render/test_role_knobs.py tests/repo/test_layering.py

test-fast: lint typecheck pytest ## everything but the systemd hosts

test: ## every test: lint, typecheck, pytest, the systemd hosts (harness self-test, every molecule scenario)
	@$(STAGE) bootstrap $(MAKE) --no-print-directory venv
	@$(STAGE) render $(MAKE) --no-print-directory render
	@$(STAGE) lint $(MAKE) --no-print-directory lint
	@$(STAGE) typecheck $(MAKE) --no-print-directory typecheck
	@$(STAGE) pytest $(MAKE) --no-print-directory pytest
	@for s in $(EXTRA_TEST_STAGES); do $(STAGE) $$s $(MAKE) --no-print-directory $$s || exit 1; done

# One source: constraints.txt is resolved from app.in + dev.in for every platform and Python >= 3.11
# (markers kept: async-timeout only below 3.11.3), keeping its current pins unless LOCK_UPGRADE=1;
# app.lock is derived from it: the app's closure at exactly those versions, every file's sha256
# (the hosts install it with pip --require-hashes --no-deps). tests/repo/test_app_lock.py checks both.
UV_PIN      := uv==0.13.8
LOCK_UV     := $(BUILD)/lockvenv/bin/uv pip compile -q --universal --python-version 3.11 --no-annotate \
               --custom-compile-command 'make lock'
LOCK_UPGRADE ?=
lock: ## re-resolve requirements/constraints.txt from requirements/*.in (LOCK_UPGRADE=1: newest), derive requirements/app.lock (hashes)
	rm -rf $(BUILD)/lockvenv && python3 -m venv $(BUILD)/lockvenv
	$(BUILD)/lockvenv/bin/pip install -q --disable-pip-version-check $(UV_PIN)
	$(LOCK_UV) $(if $(LOCK_UPGRADE),--upgrade) -o requirements/constraints.txt requirements/app.in requirements/dev.in
	$(LOCK_UV) --generate-hashes -o requirements/app.lock -c requirements/constraints.txt requirements/app.in

clean: ## remove build output (not the venv, not the cached host images)
	rm -rf $(BUILD)

# Per-area fragments: harness (test hosts, molecule), deploy (sandbox), bench. A fragment that
# provides a target adds it to PROVIDES; a stage of `make test` adds it to EXTRA_TEST_STAGES.
EXTRA_TEST_STAGES :=
PROVIDES :=
include $(sort $(wildcard mk/*.mk))

# Until its fragment lands, a target says what is missing and fails (never a silent pass).
define placeholder
$(1):
	@echo "make $(1): not available yet: $(2)"; exit 1
endef
$(foreach t,molecule sandbox sandbox-down bench, \
  $(if $(filter $(t),$(PROVIDES)),,$(eval $(call placeholder,$(t),its fragment mk/*.mk is not in this checkout))))
