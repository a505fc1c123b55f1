# harness/lib.sh: helpers shared by the harness scripts and harness/env.sh (sourced, never run).
# Everything the harness creates on this machine is named from here:
#   images      localhost/shield-debian<12|13>-systemd:<recipe hash>  (label io.shield-orchestrator.harness)
#   containers  label io.shield-orchestrator.harness=<molecule|sandbox|selftest>
#   cache       ${SHIELD_CACHE:-$HOME/.cache/shield-orchestrator}/images/<release>-<hash>/
# shellcheck shell=bash

# shellcheck disable=SC2034 # SHIELD_ROOT and HARNESS_LABEL are for the scripts sourcing this
HARNESS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SHIELD_ROOT=$(cd "$HARNESS_DIR/.." && pwd)
SHIELD_CACHE=${SHIELD_CACHE:-$HOME/.cache/shield-orchestrator}
# shellcheck disable=SC2034
HARNESS_LABEL=io.shield-orchestrator.harness

harness_die() { printf 'harness: %s\n' "$*" >&2; exit 1; }

# bookworm|12 -> 12, trixie|13 -> 13 (the two Debian releases the hosts run).
harness_release_version() {
  case $1 in
    bookworm | 12 | debian12) echo 12 ;;
    trixie | 13 | debian13) echo 13 ;;
    *) return 1 ;;
  esac
}
harness_release_codename() {
  case $1 in
    bookworm | 12 | debian12) echo bookworm ;;
    trixie | 13 | debian13) echo trixie ;;
    *) return 1 ;;
  esac
}

# The host's apt sources (the guests use the same mirror) and its locally added CA certificates
# (baked into the image so HTTPS from the guests works): both are inputs of the image recipe.
harness_apt_sources() {
  local f
  for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list; do
    [ -s "$f" ] && echo "$f"
  done
  return 0
}
harness_local_cas() {
  [ -d /usr/local/share/ca-certificates ] || return 0
  find /usr/local/share/ca-certificates -type f -name '*.crt' | LC_ALL=C sort
}

# Hash of the image recipe: the builder script plus the host inputs it bakes in.
# A changed recipe gives a new tag and a new cache entry, so it is rebuilt, never reused.
harness_image_hash() {
  local inputs
  mapfile -t inputs < <(echo "$HARNESS_DIR/build-image.sh"; harness_apt_sources; harness_local_cas)
  cat "${inputs[@]}" | sha256sum | cut -c1-12
}

# harness_image_ref RELEASE -> localhost/shield-debian12-systemd:<hash>
harness_image_ref() {
  local v
  v=$(harness_release_version "$1") || return 1
  echo "localhost/shield-debian$v-systemd:$(harness_image_hash)"
}
