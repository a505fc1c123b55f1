#!/usr/bin/env bash
# harness/build-image.sh [RELEASE]: a Debian host image that boots systemd under podman.
#   RELEASE  bookworm (Debian 12, default) or trixie (Debian 13); also taken from $RELEASE.
#
# Produces (see harness/README.md):
#   ${SHIELD_CACHE:-~/.cache/shield-orchestrator}/images/<release>-<hash>/rootfs.tar + .done
#   podman image localhost/shield-debian<12|13>-systemd:<hash>
# where <hash> covers this script, the host's apt sources and its local CA certificates.
#
# Cold: debootstrap (~1 min) -> customize -> tar, all in a temp dir moved into place at the
# end, so an interrupted build never leaves a cache entry that looks complete. Warm: `podman
# import` of the cached tar, only when the image tag is missing. A cache entry without its
# .done marker or with an unreadable tar is removed and rebuilt.
set -euo pipefail
# shellcheck source=harness/lib.sh
. "$(dirname "$0")/lib.sh"

RELEASE=${1:-${RELEASE:-bookworm}}
CODENAME=$(harness_release_codename "$RELEASE") || harness_die "unknown release '$RELEASE': use bookworm (Debian 12) or trixie (Debian 13)"
HASH=$(harness_image_hash)
IMAGE=$(harness_image_ref "$CODENAME")
ENTRY=$SHIELD_CACHE/images/$CODENAME-$HASH
TAR=$ENTRY/rootfs.tar

# Packages on top of debootstrap's minbase: systemd as PID 1, what Ansible needs
# (python3, python3-apt, sudo, acl for become_user), and what the tests use (ss, ps, ip).
INCLUDE=systemd,systemd-sysv,dbus,python3,python3-apt,sudo,acl,iproute2,procps,ca-certificates
# Units that make no sense in a container or would hold the dpkg lock during converge.
MASK=(getty@tty1.service console-getty.service apt-daily.timer apt-daily-upgrade.timer
  apt-daily.service apt-daily-upgrade.service dpkg-db-backup.timer e2scrub_all.timer
  e2scrub_reap.service fstrim.timer systemd-pstore.service systemd-remount-fs.service
  systemd-firstboot.service systemd-modules-load.service sys-kernel-debug.mount
  sys-kernel-tracing.mount)

entry_problem() { # prints why the cache entry is unusable; nothing when it is fine
  if [ ! -f "$ENTRY/.done" ]; then
    echo "no .done marker (interrupted build)"
  elif [ ! -s "$TAR" ]; then
    echo "rootfs.tar missing"
  elif ! timeout 60 tar -tf "$TAR" >/dev/null 2>&1; then
    echo "rootfs.tar is unreadable"
  fi
}

# Remove a (possibly half-built) tree without ever crossing into a mount point left inside it.
remove_tree() {
  local m
  [ -e "$1" ] || return 0
  while read -r m; do umount -l "$m"; done < <(findmnt -rn -o TARGET | grep -F "$1/" | sort -r)
  rm -rf --one-file-system "$1"
}

# The host's mirror (first non-security URI), so no hostname is written in this repository.
host_mirror() {
  local f uri=
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -s "$f" ] && uri=$(awk '/^URIs:/ && $2 !~ /security/ {print $2; exit}' "$f")
    [ -n "$uri" ] && break
  done
  [ -n "$uri" ] || [ ! -s /etc/apt/sources.list ] ||
    uri=$(awk '/^deb / && $2 !~ /security/ {print $2; exit}' /etc/apt/sources.list)
  [ -n "$uri" ] && echo "$uri"
}

customize() { # $1 = rootfs
  local root=$1 host_codename f u
  # apt: the host's sources, with the suites renamed when the guest runs another release
  host_codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
  rm -f "$root/etc/apt/sources.list"
  for f in $(harness_apt_sources); do
    case $f in
      *.sources) sed -E "/^Suites:/s/\b$host_codename\b/$CODENAME/g" "$f" >"$root/etc/apt/sources.list.d/$(basename "$f")" ;;
      *) sed -E "/^deb/s/\b$host_codename\b/$CODENAME/g" "$f" >"$root/etc/apt/sources.list" ;;
    esac
  done
  # the host's own apt settings (files no package owns: e.g. Check-Valid-Until for a snapshot
  # mirror, a proxy); package-owned snippets (packagekit, appstream) are not for the guest
  for f in /etc/apt/apt.conf.d/*; do
    [ -f "$f" ] || continue
    dpkg -S "$f" >/dev/null 2>&1 || cp "$f" "$root/etc/apt/apt.conf.d/"
  done
  # apt lists are emptied below: make them look stale, or ansible's apt module with
  # cache_valid_time believes the (empty) cache is fresh and finds no package (HARNESS gotcha 6)
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin "$root"/var/cache/apt/archives/*.deb
  touch -d 2000-01-01 "$root/var/lib/apt/lists"

  # the host's locally added CAs, so HTTPS from the guest works where the host's does
  for f in $(harness_local_cas); do
    install -D -m 0644 "$f" "$root${f}"
  done
  chroot "$root" update-ca-certificates >/dev/null 2>&1

  # systemd in a container: a fresh machine-id per guest, no gettys, no background apt
  : >"$root/etc/machine-id"
  rm -f "$root/var/lib/dbus/machine-id"
  for u in "${MASK[@]}"; do ln -sf /dev/null "$root/etc/systemd/system/$u"; done

  rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/locale/* "$root"/var/log/*.log
}

# EXIT trap of a build: stop debootstrap (its own process group) if it still runs, then drop
# the temp dir with whatever it mounted. Best effort by design, hence no `set -e` in here.
cleanup_build() {
  set +e
  if [ -n "${child:-}" ] && kill -0 "$child" 2>/dev/null; then
    kill -TERM -- "-$child"
    wait "$child"
  fi
  remove_tree "$tmp"
  remove_tree "${work:-}"
}

build() {
  local started
  started=$(date +%s)
  mkdir -p "$SHIELD_CACHE/images"
  tmp=$(mktemp -d "$SHIELD_CACHE/images/.build-$CODENAME-XXXXXX")
  # The rootfs itself is built in memory when there is room: dpkg's fsyncs on a busy disk
  # are most of debootstrap's time. Only the finished tar lands in the cache.
  work=$tmp
  if [ "$(df -Pk /dev/shm 2>/dev/null | awk 'NR==2 {print $4}')" -gt 2000000 ] 2>/dev/null; then
    work=$(mktemp -d "/dev/shm/shield-build-$CODENAME-XXXXXX")
  fi
  child=
  trap cleanup_build EXIT
  trap 'exit 130' INT TERM
  MIRROR=$(host_mirror) || harness_die "no Debian mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list: configure apt first"
  echo "harness: building $IMAGE (debootstrap $CODENAME, ~1 min)"
  # in the background and in its own process group, so Ctrl-C / TERM reach our trap at once
  setsid debootstrap --variant=minbase --include="$INCLUDE" "$CODENAME" "$work/rootfs" "$MIRROR" \
    >"$tmp/debootstrap.log" 2>&1 </dev/null &
  child=$!
  wait "$child" || {
    child=
    tail -n 15 "$tmp/debootstrap.log" >&2
    harness_die "debootstrap $CODENAME from $MIRROR failed (log above): is the Debian mirror reachable?"
  }
  child=
  customize "$work/rootfs"
  tar --numeric-owner --xattrs -C "$work/rootfs" -cf "$tmp/rootfs.tar" .
  remove_tree "$work/rootfs"
  rm -f "$tmp/debootstrap.log"
  printf 'release=%s\nhash=%s\nimage=%s\nbuilt=%s\n' "$CODENAME" "$HASH" "$IMAGE" "$(date -u +%FT%TZ)" >"$tmp/.done"
  chmod 0755 "$tmp"
  # Atomic: the entry appears complete or not at all. A concurrent build that won the race
  # already put an equal entry in place; ours is then dropped by the EXIT trap.
  mv -T "$tmp" "$ENTRY" 2>/dev/null || [ -f "$ENTRY/.done" ] || harness_die "cannot move the built image into $ENTRY"
  trap - EXIT INT TERM
  remove_tree "$tmp"
  remove_tree "$work"
  # Entries of other recipes (older commits, other clones sharing the cache) are kept while
  # in use; one not used for 7 days is dead weight (~200 MB each).
  for f in "$SHIELD_CACHE/images/$CODENAME"-*; do
    if [ "$f" != "$ENTRY" ] && [ -z "$(find "$f" -maxdepth 1 -name .done -mtime -7)" ]; then
      remove_tree "$f"
    fi
  done
  echo "harness: built $ENTRY in $(($(date +%s) - started)) s"
}

command -v podman >/dev/null || harness_die "podman is not installed: run harness/setup.sh (or make hosts-image)"
# One build per release at a time (other clones share the cache); clean-hosts leaves a
# locked release's temp dirs alone.
mkdir -p "$SHIELD_CACHE/images"
exec 9>"$SHIELD_CACHE/images/.lock-$CODENAME"
flock 9
if [ -e "$ENTRY" ]; then
  problem=$(entry_problem)
  if [ -n "$problem" ]; then
    echo "harness: cache entry $ENTRY is broken ($problem): removing it and rebuilding"
    remove_tree "$ENTRY" # an image already imported from it stays: same recipe, same content
  fi
fi
if [ ! -e "$ENTRY" ]; then
  [ "$(id -u)" -eq 0 ] || harness_die "building the $CODENAME image needs root (debootstrap, chroot)"
  command -v debootstrap >/dev/null || harness_die "debootstrap is not installed: run harness/setup.sh"
  build
fi
touch "$ENTRY/.done" # last used: entries unused for 7 days are pruned by the next build
if ! podman image exists "$IMAGE"; then
  podman import --quiet \
    --change 'CMD ["/sbin/init"]' --change 'STOPSIGNAL SIGRTMIN+3' \
    --change "LABEL io.shield-orchestrator.image=$CODENAME" \
    "$TAR" "$IMAGE" >/dev/null
  echo "harness: imported $IMAGE from the cache"
fi
echo "harness: $IMAGE ready"
