#!/usr/bin/env bash
# harness/sandbox.sh up|down: the host `make sandbox` deploys to.
#   up    one all-in-one Debian 12 host: podman container `shield-sandbox` (hostname the same),
#         systemd as PID 1, privileged, label io.shield-orchestrator.harness=sandbox.
#         Ansible reaches it with ansible_connection=podman_pipelined (see README.md).
#         The API's port in the host (GUEST_API_PORT, the orchestrator role's
#         orchestrator_api_port) is published on this machine's loopback only:
#         127.0.0.1:$SANDBOX_API_PORT (default 8000), never on 0.0.0.0. The API there serves
#         HTTPS only (the sandbox inventory turns TLS on): its certificate names 127.0.0.1 and
#         chains to inventories/sandbox.tls-ca/ca.crt (curl --cacert; mk/deploy.mk sandbox-reach).
#         Idempotent: a running sandbox that publishes that port is kept (and its deployment
#         with it); one that publishes another port is recreated.
#   down  remove it (its data goes with it).
set -euo pipefail
# shellcheck source=harness/env.sh
. "$(dirname "$0")/env.sh"
NAME=shield-sandbox
BOOT_TIMEOUT_S=60
GUEST_API_PORT=8000 # = orchestrator_api_port (tests/repo/test_front_door.py checks they agree)
PORT=${SANDBOX_API_PORT:-8000}
PUBLISH=127.0.0.1:$PORT:$GUEST_API_PORT

published() { # the host's port bindings as HOSTIP:HOSTPORT:GUESTPORT words
  podman container inspect -f '{{range $p, $b := .HostConfig.PortBindings}}{{range $b}}{{.HostIP}}:{{.HostPort}}:{{$p}} {{end}}{{end}}' "$NAME" |
    sed 's|/tcp||g'
}

case ${1:-} in
  up)
    # "Running" alone is not enough: after the machine restarts, podman can still report a
    # container whose processes are gone as running; only one that answers an exec is kept.
    if podman container exists "$NAME"; then
      if [ "$(published)" != "$PUBLISH " ]; then
        echo "sandbox-hosts: $NAME publishes '$(published)', not $PUBLISH; recreating it (its deployment is redone)"
        podman rm -f -t 5 "$NAME" >/dev/null
      elif [ "$(podman container inspect -f '{{.State.Running}}' "$NAME")" = true ] &&
        podman exec "$NAME" true 2>/dev/null; then
        echo "sandbox-hosts: $NAME is running ($(podman container inspect -f '{{.ImageName}}' "$NAME"), API on $PORT)"
        exit 0
      else
        echo "sandbox-hosts: $NAME exists but does not answer; recreating it (its deployment is redone)"
        podman rm -f -t 5 "$NAME" >/dev/null
      fi
    fi
    podman run -d --pull=never --name "$NAME" --hostname "$NAME" \
      --label "$HARNESS_LABEL=sandbox" --systemd=always --privileged \
      --publish "$PUBLISH" "$SHIELD_IMAGE_DEBIAN12" >/dev/null
    "$HARNESS_DIR/wait-booted.sh" "$NAME" "$BOOT_TIMEOUT_S"
    echo "sandbox-hosts: $NAME is up (podman connection; image $SHIELD_IMAGE_DEBIAN12; API published on $PUBLISH)"
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
