#!/usr/bin/env bash
# harness/molecule.sh [SCENARIO...]: `molecule test` for each scenario (default: all three),
# judged by molecule's exit code. Each scenario's output goes to $MOLECULE_LOG_DIR/<scenario>.log
# (the tail is printed when it fails). Ends with one plain line: `molecule: N passed, N failed`.
# MOLECULE_JOBS scenarios run at once (1 when unset; `make molecule` sets 3), in the order given
# (their hosts, networks and molecule's ephemeral directories are their own).
# `molecule test` starts and ends with destroy, so a run interrupted earlier leaves nothing
# the next run trips over; on Ctrl-C molecule destroys the running scenarios' hosts and no
# further scenario starts (checked: containers and network gone).
set -uo pipefail
# shellcheck source=harness/env.sh
. "$(dirname "$0")/env.sh"
cd "$SHIELD_ROOT" || exit 1
LOG_DIR=${MOLECULE_LOG_DIR:-$SHIELD_ROOT/build/molecule}
mkdir -p "$LOG_DIR"

scenarios=("$@")
[ ${#scenarios[@]} -gt 0 ] || scenarios=(default cluster debian13)
max_jobs=${MOLECULE_JOBS:-1}
case $max_jobs in '' | *[!0-9]* | 0) echo "molecule: MOLECULE_JOBS must be a positive number, not '$max_jobs'" >&2; exit 2 ;; esac

declare -A running=() # pid -> scenario
on_interrupt() {
  for pid in "${!running[@]}"; do
    s=${running[$pid]}
    echo "molecule: interrupted; destroying scenario $s"
    wait "$pid"
    molecule destroy -s "$s" >>"$LOG_DIR/$s.log" 2>&1
  done
  exit 130
}
trap on_interrupt INT TERM

# One scenario, start to end; prints its verdict and exits with molecule's code.
run_scenario() {
  local s=$1 start rc
  start=$(date +%s)
  echo "molecule: scenario $s (log: ${LOG_DIR#"$SHIELD_ROOT"/}/$s.log)"
  rc=0
  molecule test -s "$s" >"$LOG_DIR/$s.log" 2>&1 || rc=$?
  if [ "$rc" -eq 0 ]; then
    echo "molecule: scenario $s passed in $(($(date +%s) - start)) s"
    return 0
  fi
  {
    echo "----- last 80 lines of $s.log -----"
    tail -n 80 "$LOG_DIR/$s.log"
    echo "molecule: scenario $s FAILED (exit $rc) in $(($(date +%s) - start)) s"
  } | flock "$LOG_DIR" cat # one failure's tail at a time, whole
  return "$rc"
}

passed=0 failed=0 failures=() interrupted=
# Waits for one running scenario to end and counts it.
reap() {
  local pid rc=0
  wait -n -p pid "${!running[@]}" || rc=$?
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
  else
    failed=$((failed + 1))
    failures+=("${running[$pid]}")
    # Ctrl-C reaches molecule too: it destroys the hosts and exits with ansible's 99 (user
    # interrupt) or 130. Start no further scenario.
    case $rc in 99 | 130) interrupted=1 ;; esac
  fi
  unset "running[$pid]"
}

for s in "${scenarios[@]}"; do
  [ -z "$interrupted" ] || break
  while [ ${#running[@]} -ge "$max_jobs" ]; do reap; done
  [ -z "$interrupted" ] || break
  run_scenario "$s" &
  running[$!]=$s
done
while [ ${#running[@]} -gt 0 ]; do reap; done
echo "molecule: $passed passed, $failed failed${failures[*]:+ (${failures[*]})}"
[ "$failed" -eq 0 ]
