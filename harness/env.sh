# shellcheck shell=bash
# harness/env.sh: source before running molecule or podman by hand:  . harness/env.sh
# Exported here, not in molecule.yml: molecule's dependency step looks for containers.podman
# before it reads provisioner.env (HARNESS gotcha 7), and every podman call reads
# CONTAINERS_CONF (runc + ulimits, HARNESS gotchas 1-2).
# shellcheck source=harness/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

_shield_venv=${VENV:-.venv}
case $_shield_venv in /*) ;; *) _shield_venv=$SHIELD_ROOT/$_shield_venv ;; esac
case ":$PATH:" in *":$_shield_venv/bin:"*) ;; *) PATH="$_shield_venv/bin:$PATH" ;; esac
unset _shield_venv
export PATH
export CONTAINERS_CONF="$HARNESS_DIR/.generated/containers.conf"
export ANSIBLE_COLLECTIONS_PATH="$SHIELD_ROOT/collections"
# The test hosts' connection, podman_pipelined (one podman exec per module); molecule's
# scenarios name it in provisioner.connection_options.
export ANSIBLE_CONNECTION_PLUGINS="$HARNESS_DIR/plugins/connection"
export SHIELD_CACHE
# The host images for this recipe (molecule.yml reads these; build them with make hosts-image).
SHIELD_IMAGE_DEBIAN12=$(harness_image_ref bookworm)
SHIELD_IMAGE_DEBIAN13=$(harness_image_ref trixie)
export SHIELD_IMAGE_DEBIAN12 SHIELD_IMAGE_DEBIAN13
# Controller-built wheels for the hosts' app venvs: <dir>/py3.11 (bookworm), <dir>/py3.13
# (trixie); the roles read it as orchestrator_wheelhouse_dir (make wheelhouse builds it).
# Named by a hash of what it is built from, so a changed pin or recipe gets a fresh one.
SHIELD_WHEELHOUSE_DIR=$SHIELD_CACHE/wheelhouse/$(cat "$SHIELD_ROOT/requirements/app.in" \
  "$SHIELD_ROOT/requirements/constraints.txt" "$HARNESS_DIR/wheelhouse.sh" | sha256sum | cut -c1-12)
export SHIELD_WHEELHOUSE_DIR
# Appended to every molecule container and network name (empty by default): lets a second
# checkout on the same machine run molecule without touching this one's hosts.
export SHIELD_HOST_SUFFIX=${SHIELD_HOST_SUFFIX:-}
