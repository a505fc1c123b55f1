# mk/bench.mk: benchmarks and the long fault-injection suite (bench/README.md).
#   make bench   every benchmark (peers installed into their own venvs under
#                $${SHIELD_CACHE:-$$HOME/.cache/shield-orchestrator}/bench-venvs); writes
#                bench/REPORT.md and prints the summary. BENCH_N=20000 BENCH_ROUNDS=3
#                BENCH_ONLY=overhead,... BENCH_OVERHEAD_ONLY=dramatiq,ours,... (bench/README.md)
#   make chaos   the fault tests (tests/faults) in their long form (SHIELD_CHAOS=long)
BENCH_ONLY ?=

.PHONY: bench chaos

bench: $(VENV_STAMP) render ## benchmarks -> bench/REPORT.md (ratios against same-run baselines)
	SHIELD_RENDERED=$(CURDIR)/$(RENDERED)/default $(BIN)/python -m bench.run $(if $(BENCH_ONLY),--only $(BENCH_ONLY))

chaos: $(VENV_STAMP) render ## fault-injection suite, long form (tests/faults, SHIELD_CHAOS=long)
	SHIELD_CHAOS=long SHIELD_RENDERED=$(CURDIR)/$(RENDERED)/default $(PYTEST) tests/faults -o timeout=1800

PROVIDES += bench chaos
