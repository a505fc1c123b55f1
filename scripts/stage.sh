#!/usr/bin/env bash
# scripts/stage.sh NAME CMD...: run one stage of `make test`, print its duration and result.
set -uo pipefail
name=$1; shift
start=$(date +%s)
"$@"
rc=$?
printf '== stage %-12s %4ss  %s\n' "$name" "$(( $(date +%s) - start ))" "$([ $rc -eq 0 ] && echo ok || echo "FAILED (exit $rc)")"
exit $rc
