#!/usr/bin/env bash
# harness/wait-booted.sh CONTAINER [TIMEOUT_S]: wait until systemd in the container reports
# `running` or `degraded`; otherwise print its failed units and fail with one line.
set -euo pipefail
# shellcheck source=harness/lib.sh
. "$(dirname "$0")/lib.sh"
name=$1
timeout_s=${2:-60}
deadline=$(($(date +%s) + timeout_s))
state=
while [ "$(date +%s)" -lt "$deadline" ]; do
  # is-system-running exits non-zero for every state but `running`: read the state, not the code
  state=$(podman exec "$name" systemctl is-system-running 2>/dev/null) || [ -n "$state" ] || state=starting
  case $state in running | degraded) exit 0 ;; esac
  sleep 0.3
done
if ! podman exec "$name" systemctl --failed --no-pager >&2; then echo "(cannot list its failed units)" >&2; fi
harness_die "$name did not boot within ${timeout_s} s (systemd state: ${state:-unknown})"
