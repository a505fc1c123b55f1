#!/usr/bin/env bash
# harness/clean-hosts.sh: remove what this project's harness left on the machine, and only that:
#   containers labelled io.shield-orchestrator.harness (molecule, sandbox, selftest),
#   podman networks named shield-*, half-built image trees (and any mount left inside them)
#   in the cache and in /dev/shm.
#   images of older recipes (labelled io.shield-orchestrator.image) that no container uses.
# The current images and the image cache stay (make hosts-image reuses them).
set -euo pipefail
# shellcheck source=harness/env.sh
. "$(dirname "$0")/env.sh"
command -v podman >/dev/null || { echo "clean-hosts: podman is not installed, nothing to clean"; exit 0; }

# any value of the label: molecule, sandbox, selftest (the image's own label has another key)
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
# Images of older recipes (the current ones are $SHIELD_IMAGE_DEBIAN12/13), unless in use.
mapfile -t images < <(podman images --format '{{.Repository}}:{{.Tag}}' --filter "label=io.shield-orchestrator.image")
for i in "${images[@]}"; do
  case $i in "$SHIELD_IMAGE_DEBIAN12" | "$SHIELD_IMAGE_DEBIAN13") continue ;; esac
  if [ -n "$(podman ps -aq --filter "ancestor=$i")" ]; then
    echo "clean-hosts: $i is used by a container; kept"
    continue
  fi
  podman rmi "$i" >/dev/null
  echo "clean-hosts: removed image $i (older recipe)"
done

# Half-built image trees of interrupted builds; a build still running holds its release's lock.
mkdir -p "$SHIELD_CACHE/images"
for release in bookworm trixie; do
  for d in "$SHIELD_CACHE/images/.build-$release-"* "/dev/shm/shield-build-$release-"*; do
    [ -e "$d" ] || continue
    exec 9>"$SHIELD_CACHE/images/.lock-$release"
    if ! flock -n 9; then
      echo "clean-hosts: a $release image build is running; leaving $d"
      continue
    fi
    while read -r m; do umount -l "$m"; done < <(findmnt -rn -o TARGET | grep -F "$d/" | sort -r || [ $? -eq 1 ])
    rm -rf --one-file-system "$d"
    echo "clean-hosts: removed interrupted image build $d"
    exec 9>&-
  done
done
echo "clean-hosts: done"
