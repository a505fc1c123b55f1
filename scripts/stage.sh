#!/usr/bin/env bash
# scripts/stage.sh NAME CMD...: run one stage of `make test`, print its duration and result.
set -uo pipefail
name=$1; shift
start=$(date +%s)
"$@"
rc=$?
if [ $rc -eq 0 ]; then result=ok; else result="FAILED (exit $rc)"; fi
printf '== stage %-12s %4ss  %s\n' "$name" "$(( $(date +%s) - start ))" "$result"
exit $rc
