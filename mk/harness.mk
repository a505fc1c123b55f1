# mk/harness.mk: the systemd test hosts (harness/, molecule/). See harness/README.md.
#   make hosts-image       build or restore the Debian 12 + 13 host images (cached by recipe hash)
#   make molecule          every scenario (default cluster debian13; MOLECULE_SCENARIOS=... for some),
#                          MOLECULE_JOBS of them at once (3: their hosts and networks are their own)
#   make harness-selftest  boot one host, start a unit in it, remove it (tests/harness)
#   make wheelhouse        controller-built wheels for the hosts' app venvs (py3.11 + py3.13)
#   make sandbox-hosts     the all-in-one host `shield-sandbox` that `make sandbox` deploys to
#   make sandbox-down      remove it
#   make clean-hosts       remove containers/networks/mounts this harness left (nothing else)
HARNESS            := harness
MOLECULE_SCENARIOS ?= default cluster debian13
# All three at once (measured on this 2-core machine, before podman_pipelined: 1,507 s for the
# three; two at once, debian13 after default, ~1,613 s; one after another ~28-45 min). The
# cores are busy throughout either way: three at once leaves no scenario running alone at the
# end. Each scenario keeps its own timeouts.
MOLECULE_JOBS      ?= 3
export MOLECULE_JOBS

.PHONY: molecule-ci hosts-setup hosts-image hosts-image-bookworm hosts-image-trixie molecule harness-selftest \
        wheelhouse sandbox-hosts sandbox-down clean-hosts

hosts-setup: $(VENV_STAMP) ## host packages (podman, runc, debootstrap), containers.conf, containers.podman
	@VENV=$(VENV) $(HARNESS)/setup.sh

hosts-image: hosts-setup ## build or restore the Debian 12 and 13 host images (cached)
	@$(MAKE) --no-print-directory -j2 hosts-image-bookworm hosts-image-trixie

hosts-image-bookworm hosts-image-trixie: hosts-image-%:
	@. $(HARNESS)/env.sh && $(HARNESS)/build-image.sh $*

wheelhouse: hosts-setup ## wheels for the hosts' app venvs, built once per constraints.txt
	@. $(HARNESS)/env.sh && VENV=$(VENV) $(HARNESS)/wheelhouse.sh

molecule: hosts-image wheelhouse ## molecule test, every scenario; ends with `molecule: N passed, N failed`
	@MOLECULE_LOG_DIR=$(CURDIR)/$(BUILD)/molecule $(HARNESS)/molecule.sh $(MOLECULE_SCENARIOS)

harness-selftest: hosts-image ## boot a host from the image, start a unit in it, remove it
	@. $(HARNESS)/env.sh && $(PYTEST) tests/harness -m molecule

sandbox-hosts: hosts-image wheelhouse ## the all-in-one host shield-sandbox (podman connection)
	@$(HARNESS)/sandbox.sh up

sandbox-down: ## remove the sandbox host
	@$(HARNESS)/sandbox.sh down

clean-hosts: ## remove containers, networks and mounts left by the harness (only its own)
	@$(HARNESS)/clean-hosts.sh

PROVIDES += molecule sandbox-down
# `make test` proves the harness itself (boot a host, start a hardened unit), then every
# scenario: `default` (all-in-one Debian 12 host: converge site.yml, idempotence, --check,
# verify with a real ingestion, a `-t workers` redeploy), `cluster` (data host + two worker
# hosts, a job spread over both, the rolling restart under an ingestion) and `debian13`.
molecule-ci: hosts-image wheelhouse ## the molecule scenarios `make test` runs (all of them)
	@MOLECULE_LOG_DIR=$(CURDIR)/$(BUILD)/molecule $(HARNESS)/molecule.sh $(MOLECULE_SCENARIOS)
EXTRA_TEST_STAGES += harness-selftest molecule-ci
