#!/usr/bin/env bash
# harness/molecule.sh [SCENARIO...]: `molecule test` for each scenario (default: all three),
# judged by molecule's exit code. Each scenario's output goes to $MOLECULE_LOG_DIR/<scenario>.log
# (the tail is printed when it fails). Ends with one plain line: `molecule: N passed, N failed`.
# `molecule test` starts and ends with destroy, so a run interrupted earlier leaves nothing
# the next run trips over; on Ctrl-C molecule destroys the current scenario's hosts and no
# further scenario starts (checked: containers and network gone).
set -uo pipefail
# shellcheck source=harness/env.sh
. "$(dirname "$0")/env.sh"
cd "$SHIELD_ROOT" || exit 1
LOG_DIR=${MOLECULE_LOG_DIR:-$SHIELD_ROOT/build/molecule}
mkdir -p "$LOG_DIR"

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(default cluster debian13)
current=
on_interrupt() {
  if [ -n "$current" ]; then
    echo "molecule: interrupted; destroying scenario $current"
    molecule destroy -s "$current" >>"$LOG_DIR/$current.log" 2>&1
  fi
  exit 130
}
trap on_interrupt INT TERM

passed=0 failed=0 failures=()
for s in "${scenarios[@]}"; do
  current=$s
  start=$(date +%s)
  echo "molecule: scenario $s (log: ${LOG_DIR#"$SHIELD_ROOT"/}/$s.log)"
  if molecule test -s "$s" >"$LOG_DIR/$s.log" 2>&1; then
    passed=$((passed + 1))
    echo "molecule: scenario $s passed in $(($(date +%s) - start)) s"
  else
    rc=$?
    failed=$((failed + 1))
    failures+=("$s")
    echo "----- last 80 lines of $s.log -----"
    tail -n 80 "$LOG_DIR/$s.log"
    echo "molecule: scenario $s FAILED (exit $rc) in $(($(date +%s) - start)) s"
    # Ctrl-C reaches molecule too: it destroys the hosts and exits with ansible's 99 (user
    # interrupt) or 130, and bash then skips its own trap. Stop here instead of going on.
    case $rc in 99 | 130) break ;; esac
  fi
done
current=
echo "molecule: $passed passed, $failed failed${failures[*]:+ (${failures[*]})}"
[ "$failed" -eq 0 ]
