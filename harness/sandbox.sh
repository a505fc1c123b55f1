#!/usr/bin/env bash
# harness/sandbox.sh up|down: the host `make sandbox` deploys to.
#   up    one all-in-one Debian 12 host: podman container `shield-sandbox` (hostname the same),
#         systemd as PID 1, privileged, label io.shield-orchestrator.harness=sandbox.
#         Ansible reaches it with ansible_connection=containers.podman.podman (see README.md).
#         Idempotent: a running sandbox is kept (and its deployment with it).
#   down  remove it (its data goes with it).
set -euo pipefail
# shellcheck source=harness/env.sh
. "$(dirname "$0")/env.sh"
NAME=shield-sandbox
BOOT_TIMEOUT_S=60

case ${1:-} in
  up)
    # "Running" alone is not enough: after the machine restarts, podman can still report a
    # container whose processes are gone as running; only one that answers an exec is kept.
    if [ "$(podman container inspect -f '{{.State.Running}}' "$NAME" 2>/dev/null)" = true ] &&
      podman exec "$NAME" true 2>/dev/null; then
      echo "sandbox-hosts: $NAME is running ($(podman container inspect -f '{{.ImageName}}' "$NAME"))"
      exit 0
    fi
    if podman container exists "$NAME"; then
      echo "sandbox-hosts: $NAME exists but does not answer; recreating it (its deployment is redone)"
      podman rm -f -t 5 "$NAME" >/dev/null
    fi
    podman run -d --pull=never --name "$NAME" --hostname "$NAME" \
      --label "$HARNESS_LABEL=sandbox" --systemd=always --privileged \
      "$SHIELD_IMAGE_DEBIAN12" >/dev/null
    "$HARNESS_DIR/wait-booted.sh" "$NAME" "$BOOT_TIMEOUT_S"
    echo "sandbox-hosts: $NAME is up (podman connection; image $SHIELD_IMAGE_DEBIAN12)"
    ;;
  down)
    if podman container exists "$NAME"; then
      podman rm -f -t 10 "$NAME" >/dev/null
      echo "sandbox-down: removed $NAME"
    else
      echo "sandbox-down: no $NAME container"
    fi
    ;;
  *) harness_die "usage: harness/sandbox.sh up|down" ;;
esac
