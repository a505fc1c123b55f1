# mk/deploy.mk: the main job. See README.md ("make sandbox").
#   make sandbox        preflight (scripts/sandbox-preflight.sh), local systemd host (harness:
#                       make sandbox-hosts), full deploy with site.yml, the repository's docs
#                       ingested through the API with scripts/shieldctl (live progress bar,
#                       over HTTPS verified with the sandbox's CA: inventories/sandbox.tls-ca),
#                       then this repository's own git history indexed in the sandbox
#                       (scripts/sandbox-index.py: HEAD~5, then HEAD) with shieldctl repos,
#                       the stack left running and reachable from this machine
#   make sandbox-down   (mk/harness.mk) remove the host and its deployment
# Offline engine unless an Ollama endpoint is given: make sandbox OLLAMA=http://HOST:11434
# TIKTOKEN_FILE=path/o200k_base.tiktoken (the lightrag engine never downloads its tokenizer)
# SANDBOX_API_PORT=8000: the port on this machine's loopback that the sandbox API is published on
# SANDBOX_CHECK=1 (CI): the deploy must change nothing (a second run), the graph must not be empty
# SANDBOX_INDEX_GLOBS: the include globs of the self-index (the docs, the make files, scripts,
# playbooks and the harness: ~50 of ~450 files, ~100 chunks, to stay within the sandbox's time;
# make sandbox SANDBOX_INDEX_GLOBS= indexes every file)
SANDBOX_HOST     := shield-sandbox
SANDBOX_LOG      := $(BUILD)/sandbox
SANDBOX_SECRETS  := $(BUILD)/sandbox/secrets
SANDBOX_API_PORT ?= 8000
SANDBOX_CHECK    ?=
OLLAMA           ?=
TIKTOKEN_FILE    ?=
SANDBOX_URL      := https://127.0.0.1:$(SANDBOX_API_PORT)
# the sandbox's CA (inventories/sandbox: orchestrator_tls_enabled, the play makes it): the API's
# certificate is verified with it, never skipped (curl --cacert, shieldctl SHIELD_CA_FILE)
SANDBOX_CA       := inventories/sandbox.tls-ca/ca.crt
SANDBOX_INDEX_GLOBS ?= *.md /mk/ /playbooks/ /harness/ scripts/*.sh scripts/shieldctl
SANDBOX_INDEX_BACK  ?= 5
SANDBOX_CORPUS   := README.md ARCHITECTURE.md CHANGELOG.md roles/*/README.md roles/*/TROUBLESHOOTING.md harness/README.md collections/ansible_collections/shield/orchestrator/README.md
export SANDBOX_API_PORT
export SHIELD_SANDBOX_SECRETS_DIR := $(CURDIR)/$(SANDBOX_SECRETS)

.PHONY: sandbox sandbox-preflight sandbox-deploy sandbox-ingest sandbox-index sandbox-reach

sandbox: ## the main job: local systemd host, full deploy, the repo's docs ingested and its history indexed
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory sandbox-preflight && \
	$(MAKE) --no-print-directory sandbox-hosts && \
	$(MAKE) --no-print-directory sandbox-deploy && \
	$(MAKE) --no-print-directory sandbox-ingest && \
	$(MAKE) --no-print-directory sandbox-index && \
	$(MAKE) --no-print-directory sandbox-reach && \
	echo "sandbox: done in $$(( $$(date +%s) - start )) s"

sandbox-preflight: ## refuse a bad OLLAMA, TIKTOKEN_FILE or SANDBOX_API_PORT, or no podman, before anything
	@OLLAMA="$(OLLAMA)" TIKTOKEN_FILE="$(TIKTOKEN_FILE)" scripts/sandbox-preflight.sh

sandbox-deploy: $(VENV_STAMP)
	@mkdir -p $(SANDBOX_LOG) && (umask 077 && mkdir -p $(SANDBOX_SECRETS))
	@echo "sandbox: deploying with site.yml (log: $(SANDBOX_LOG)/deploy.log)"
	@start=$$(date +%s); \
	. harness/env.sh && SHIELD_OLLAMA_ENDPOINT="$(OLLAMA)" SHIELD_TIKTOKEN_FILE="$(TIKTOKEN_FILE)" $(BIN)/ansible-playbook site.yml >$(SANDBOX_LOG)/deploy.log 2>&1 \
	  || { tail -60 $(SANDBOX_LOG)/deploy.log; echo "sandbox: deploy failed (full log: $(SANDBOX_LOG)/deploy.log)"; exit 1; }; \
	sed -n '/PLAY RECAP/,$$p' $(SANDBOX_LOG)/deploy.log | grep -v '^$$'; \
	echo "sandbox: deployed in $$(( $$(date +%s) - start )) s"; \
	if [ -n "$(SANDBOX_CHECK)" ]; then scripts/recap-unchanged.sh $(SANDBOX_LOG)/deploy.log; fi

sandbox-ingest:
	@. harness/env.sh && \
	tar -cf - $(wildcard $(SANDBOX_CORPUS)) | podman exec -i $(SANDBOX_HOST) sh -c 'rm -rf /root/corpus && mkdir -p /root/corpus && tar -xf - -C /root/corpus' && \
	podman cp scripts/shieldctl $(SANDBOX_HOST):/usr/local/bin/shieldctl && \
	podman exec $(if $(shell [ -t 1 ] && echo tty),-t) -e SHIELD_ENGINE_LABEL="$(if $(OLLAMA),lightrag via Ollama $(OLLAMA),offline extraction (no LLM))" \
	  -e SHIELD_API_URL=https://127.0.0.1:8000 -e SHIELD_CA_FILE=/etc/shield-orchestrator/tls/ca.crt \
	  $(SANDBOX_HOST) shieldctl submit /root/corpus --follow --require-graph

# This repository's own history (a git bundle of HEAD, a bare repository in the host), indexed
# at HEAD~$(SANDBOX_INDEX_BACK) then re-indexed at HEAD with shieldctl repos inside the host.
sandbox-index:
	@. harness/env.sh && \
	podman cp scripts/shieldctl $(SANDBOX_HOST):/usr/local/bin/shieldctl && \
	scripts/sandbox-index.py $(SANDBOX_HOST) --back $(SANDBOX_INDEX_BACK) $(foreach g,$(SANDBOX_INDEX_GLOBS),--include '$(g)')

# The stack from this machine: /health through the published port, the key in a 0600 file and
# a curl header file beside it (the key never goes on a command line), how to reach the rest.
sandbox-reach:
	@(umask 077 && printf 'X-API-Key: %s\n' "$$(cat $(SANDBOX_SECRETS)/api_key)" >$(SANDBOX_SECRETS)/api_key.header)
	@curl -fsS --max-time 10 --cacert $(SANDBOX_CA) $(SANDBOX_URL)/health >/dev/null \
	  || { echo "sandbox: the API does not answer on $(SANDBOX_URL)/health from this machine (verified with $(SANDBOX_CA))"; exit 1; }
	@if curl -sS --max-time 10 -o /dev/null http://127.0.0.1:$(SANDBOX_API_PORT)/health 2>/dev/null; then \
	  echo "sandbox: the API answered plaintext HTTP on port $(SANDBOX_API_PORT); it must answer HTTPS only"; exit 1; fi
	@curl -fsS --max-time 10 --cacert $(SANDBOX_CA) -H @$(SANDBOX_SECRETS)/api_key.header $(SANDBOX_URL)/health/detailed >/dev/null \
	  || { echo "sandbox: $(SANDBOX_URL)/health/detailed refused the key in $(SANDBOX_SECRETS)/api_key"; exit 1; }
	@echo "sandbox: the stack keeps running in the container $(SANDBOX_HOST), its API on this machine's loopback:"
	@echo "  API      $(SANDBOX_URL)   (HTTPS only; OpenAPI page: $(SANDBOX_URL)/docs)"
	@echo "  CA       $(SANDBOX_CA) (the sandbox's own: trust it in a browser, or pass it as below)"
	@echo "  API key  $(SANDBOX_SECRETS)/api_key (mode 0600); as a curl header: $(SANDBOX_SECRETS)/api_key.header"
	@echo "  curl --cacert $(SANDBOX_CA) -H @$(SANDBOX_SECRETS)/api_key.header $(SANDBOX_URL)/health/detailed"
	@echo "  SHIELD_API_URL=$(SANDBOX_URL) SHIELD_CA_FILE=$(SANDBOX_CA) SHIELD_API_KEY_FILE=$(SANDBOX_SECRETS)/api_key scripts/shieldctl submit FILE --follow"
	@echo "  podman exec $(SANDBOX_HOST) journalctl -u 'shield-orchestrator-*' -f"
	@echo "  make sandbox-down   # remove it (the secrets stay in $(SANDBOX_SECRETS) for the next sandbox)"

PROVIDES += sandbox
