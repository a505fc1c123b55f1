#!/usr/bin/env bash
# scripts/bootstrap.sh: everything `make` needs on a fresh Debian 12 machine, idempotently.
#   - Debian packages the tests use (redis-server, postgresql, python3-venv), only when missing
#   - the project venv (.venv) from requirements/*.in pinned by requirements/constraints.txt
#   - promtool (from Debian's prometheus package) in the venv, for the shipped alert rules
# A second run is a no-op: the venv is stamped with a hash of the requirement files.
# On a machine where something cannot be installed, it stops with one line naming it.
set -euo pipefail
cd "$(dirname "$0")/.."

VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
# shellcheck disable=SC2206  # a space-separated override, for tests of the failure path
APT_PACKAGES=(${SHIELD_APT_PACKAGES:-redis-server redis-tools postgresql postgresql-client python3-venv})
PROMETHEUS_DEB=prometheus # only its promtool is taken (below)

die() { printf 'bootstrap: %s\n' "$*" >&2; exit 1; }

missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing Debian packages ${missing[*]} and no apt-get here: install them by hand"
  [ "$(id -u)" -eq 0 ] || die "missing Debian packages ${missing[*]}: run 'sudo apt-get install ${missing[*]}' (or make as root)"
  export DEBIAN_FRONTEND=noninteractive
  apt=(apt-get -o DPkg::Lock::Timeout=300 -qq)
  log=$(mktemp)
  "${apt[@]}" update >"$log" 2>&1 \
    || die "apt-get update failed, no access to the Debian mirror (needed for ${missing[*]}): $(tail -1 "$log")"
  "${apt[@]}" install -y "${missing[@]}" >"$log" 2>&1 \
    || die "apt-get install ${missing[*]} failed: $(tail -1 "$log")"
  rm -f "$log"
  echo "bootstrap: installed ${missing[*]}"
fi

command -v "$PYTHON" >/dev/null || die "no $PYTHON on PATH: install Python 3.11"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' \
  || die "$PYTHON is $("$PYTHON" -V 2>&1); the controller needs Python 3.11 (ansible-core 2.19)"

want=$(cat requirements/app.in requirements/dev.in requirements/constraints.txt | sha256sum | cut -c1-16)
stamp="$VENV/.bootstrap-$want"
if [ ! -f "$stamp" ]; then
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV" || die "python3 -m venv failed: install python3-venv"
  "$VENV/bin/pip" install -q --disable-pip-version-check -r requirements/app.in -r requirements/dev.in \
      -c requirements/constraints.txt >"$VENV/pip.log" 2>&1 \
    || die "pip install failed (see $VENV/pip.log): PyPI must be reachable"
  rm -f "$VENV"/.bootstrap-*
  touch "$stamp"
  echo "bootstrap: venv ready ($VENV)"
fi

# promtool checks and unit-tests the Prometheus rules the collection ships: the binary out of
# Debian's prometheus package, unpacked into the venv (installing the package would start a
# Prometheus server on this machine).
if [ ! -x "$VENV/bin/promtool" ]; then
  command -v apt-get >/dev/null || die "no promtool and no apt-get: put promtool (Debian package prometheus) in $VENV/bin"
  dl=$(mktemp -d)
  (cd "$dl" && apt-get -qq download "$PROMETHEUS_DEB" >/dev/null 2>&1) \
    || { [ "$(id -u)" -eq 0 ] && apt-get -qq update >/dev/null 2>&1 && (cd "$dl" && apt-get -qq download "$PROMETHEUS_DEB" >/dev/null 2>&1); } \
    || die "apt-get download $PROMETHEUS_DEB failed: the Debian mirror must be reachable (for promtool)"
  dpkg-deb --fsys-tarfile "$dl"/*.deb | tar -xO ./usr/bin/promtool >"$VENV/bin/promtool.tmp" \
    || die "no usr/bin/promtool in Debian's $PROMETHEUS_DEB package"
  chmod 0755 "$VENV/bin/promtool.tmp" && mv "$VENV/bin/promtool.tmp" "$VENV/bin/promtool"
  rm -rf "$dl"
  echo "bootstrap: promtool from Debian's $PROMETHEUS_DEB ($("$VENV/bin/promtool" --version 2>&1 | head -1))"
fi
