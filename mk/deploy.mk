# mk/deploy.mk: the main job. See README.md ("make sandbox").
#   make sandbox        local systemd host (harness: make sandbox-hosts), full deploy with
#                       site.yml, the repository's docs ingested through the API with
#                       scripts/shieldctl (live progress bar), the stack left running
#   make sandbox-down   (mk/harness.mk) remove the host and its deployment
# Offline engine unless an Ollama endpoint is given: make sandbox OLLAMA=http://HOST:11434
# TIKTOKEN_FILE=path/o200k_base.tiktoken (the lightrag engine never downloads its tokenizer)
SANDBOX_HOST   := shield-sandbox
SANDBOX_LOG    := $(BUILD)/sandbox
OLLAMA         ?=
TIKTOKEN_FILE  ?=
SANDBOX_CORPUS := README.md ARCHITECTURE.md CHANGELOG.md roles/*/README.md roles/*/TROUBLESHOOTING.md harness/README.md collections/ansible_collections/shield/orchestrator/README.md

.PHONY: sandbox sandbox-deploy sandbox-ingest

sandbox: ## the main job: local systemd host, full deploy, the repo's docs ingested through the API
	@start=$$(date +%s); \
	$(MAKE) --no-print-directory sandbox-hosts && \
	$(MAKE) --no-print-directory sandbox-deploy && \
	$(MAKE) --no-print-directory sandbox-ingest && \
	echo "sandbox: done in $$(( $$(date +%s) - start )) s" && \
	echo "sandbox: the stack keeps running in the container $(SANDBOX_HOST):" && \
	echo "  podman exec $(SANDBOX_HOST) shieldctl health           # /health/detailed" && \
	echo "  podman exec -it $(SANDBOX_HOST) shieldctl submit FILE --follow" && \
	echo "  podman exec $(SANDBOX_HOST) journalctl -u 'shield-orchestrator-*' -f" && \
	echo "  make sandbox-down                                       # remove it"

sandbox-deploy: $(VENV_STAMP) | $(BUILD)
	@mkdir -p $(SANDBOX_LOG)
	@echo "sandbox: deploying with site.yml (log: $(SANDBOX_LOG)/deploy.log)"
	@start=$$(date +%s); \
	. harness/env.sh && SHIELD_OLLAMA_ENDPOINT="$(OLLAMA)" SHIELD_TIKTOKEN_FILE="$(TIKTOKEN_FILE)" $(BIN)/ansible-playbook site.yml >$(SANDBOX_LOG)/deploy.log 2>&1 \
	  || { tail -60 $(SANDBOX_LOG)/deploy.log; echo "sandbox: deploy failed (full log: $(SANDBOX_LOG)/deploy.log)"; exit 1; }; \
	sed -n '/PLAY RECAP/,$$p' $(SANDBOX_LOG)/deploy.log | grep -v '^$$'; \
	echo "sandbox: deployed in $$(( $$(date +%s) - start )) s"

sandbox-ingest:
	@. harness/env.sh && \
	tar -cf - $(wildcard $(SANDBOX_CORPUS)) | podman exec -i $(SANDBOX_HOST) sh -c 'rm -rf /root/corpus && mkdir -p /root/corpus && tar -xf - -C /root/corpus' && \
	podman cp scripts/shieldctl $(SANDBOX_HOST):/usr/local/bin/shieldctl && \
	podman exec $(if $(shell [ -t 1 ] && echo tty),-t) -e SHIELD_ENGINE_LABEL="$(if $(OLLAMA),lightrag via Ollama $(OLLAMA),offline extraction (no LLM))" \
	  $(SANDBOX_HOST) shieldctl submit /root/corpus --follow

PROVIDES += sandbox
