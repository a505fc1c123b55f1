#!/usr/bin/env bash
# harness/clean-hosts.sh: remove what this project's harness left on the machine, and only that:
#   containers labelled io.shield-orchestrator.harness (molecule, sandbox, selftest),
#   podman networks named shield-*, half-built image trees (and any mount left inside them)
#   in the cache and in /dev/shm.
# Cached images and the image cache itself stay (make hosts-image reuses them).
set -euo pipefail
# shellcheck source=harness/env.sh
. "$(dirname "$0")/env.sh"
command -v podman >/dev/null || { echo "clean-hosts: podman is not installed, nothing to clean"; exit 0; }

mapfile -t ids < <(podman ps -aq --filter "label=$HARNESS_LABEL")
if [ ${#ids[@]} -gt 0 ]; then
  podman rm -f -t 5 "${ids[@]}" >/dev/null
  echo "clean-hosts: removed ${#ids[@]} container(s)"
fi
mapfile -t nets < <(podman network ls --format '{{.Name}}' | grep '^shield-' || [ $? -eq 1 ])
for n in "${nets[@]}"; do
  podman network rm "$n" >/dev/null
  echo "clean-hosts: removed network $n"
done
for d in "$SHIELD_CACHE"/images/.build-* /dev/shm/shield-build-*; do
  [ -e "$d" ] || continue
  while read -r m; do umount -l "$m"; done < <(findmnt -rn -o TARGET | grep -F "$d/" | sort -r || [ $? -eq 1 ])
  rm -rf --one-file-system "$d"
  echo "clean-hosts: removed interrupted image build $d"
done
echo "clean-hosts: done"
