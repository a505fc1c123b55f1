#!/usr/bin/env bash
# scripts/recap-unchanged.sh LOG: exit 0 when the PLAY RECAP of an ansible-playbook log shows
# every host with changed=0 and failed=0 (an idempotent redeploy), else name the hosts; exit 1.
set -euo pipefail
log=${1:?usage: scripts/recap-unchanged.sh ANSIBLE_LOG}
awk -v file="$log" '
  /^PLAY RECAP/ { recap = 1; next }
  recap && / : ok=[0-9]+ / {
    hosts++
    if ($0 !~ / changed=0 / || $0 !~ / failed=0 /) bad = bad " " $1
  }
  END {
    if (!hosts) { print "recap: no PLAY RECAP in " file > "/dev/stderr"; exit 1 }
    if (bad) { print "recap: the redeploy was not idempotent on" bad " (see " file ")" > "/dev/stderr"; exit 1 }
    print "recap: changed=0 failed=0 on " hosts " host(s)"
  }' "$log"
