#!/usr/bin/env bash
# Builds the Docker image $TAG (PostgreSQL 15 on Debian bookworm) without any
# registry. debootstrap makes a minimal bookworm root filesystem with the
# postgresql-15 package from Debian's archive, trimmed of apt caches, docs,
# man pages, translations, locale sources and the optional LLVM JIT (a
# third of the size; PostgreSQL runs without JIT when its library is
# missing). `docker import` turns it into $BASE, and a three-line build adds
# entrypoint.sh (beside this script) and STOPSIGNAL.
#
# debootstrap takes a minute or more, so the root filesystem tarball is
# cached outside the repository in a directory keyed by the versions, and
# nothing runs when the engine already has $TAG: a second run does nothing.
# A change to entrypoint.sh or to the image's configuration needs a new
# REVISION, a change to the root filesystem a new ROOTFS_REVISION too:
# engines that have an image go by its tag. An image made from another
# entrypoint.sh is reported, never used silently.
#
# Needs debootstrap and root for a cold build, and the docker CLI.
# Prints the tag on its last line.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
PG_MAJOR=15 SUITE=bookworm ROOTFS_REVISION=1 REVISION=1
TAG=tenantflow/postgres:$PG_MAJOR-$REVISION
BASE=tenantflow/postgres-rootfs:$PG_MAJOR-$SUITE-$ROOTFS_REVISION
MIRROR=${TENANTFLOW_DEBIAN_MIRROR:-http://deb.debian.org/debian}
dir=${TENANTFLOW_POSTGRES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tenantflow/postgres-$PG_MAJOR-$SUITE-$ROOTFS_REVISION}
tarball=$dir/rootfs.tar
label=org.tenantflow.postgres.entrypoint-sha256

fail() { echo "postgres image: $*" >&2; exit 1; }

want=$(sha256sum <"$here/entrypoint.sh" | cut -d' ' -f1) || fail "cannot read $here/entrypoint.sh"
# The image is there (and made from this entrypoint.sh): nothing to do.
done_already() {
  local have
  have=$(docker image inspect --format "{{index .Config.Labels \"$label\"}}" "$TAG" 2>/dev/null) || return 1
  [ "$have" = "$want" ] || fail "the engine's $TAG was made from another entrypoint.sh (sha256 $have, now $want): bump REVISION in $0"
  echo "$TAG"
}
done_already && exit 0
docker version >/dev/null || fail "the docker CLI cannot reach the Docker Engine"

# One build at a time (test packages run in parallel); a run that waited
# finds the image another one made.
mkdir -p "$dir" || fail "cannot create the cache directory $dir"
exec 9>"$dir.lock" || fail "cannot open $dir.lock"
flock 9 || fail "cannot lock $dir.lock"
done_already && exit 0

build_rootfs() {
  command -v debootstrap >/dev/null || fail "debootstrap is not installed (apt-get install debootstrap)"
  [ "$(id -u)" = 0 ] || fail "debootstrap needs root to build the root filesystem in $dir"
  local root=$dir/rootfs.tmp s=$SECONDS
  rm -rf "$root" "$tarball.tmp"
  echo "postgres image: debootstrap $SUITE with postgresql-$PG_MAJOR into $root" >&2
  debootstrap --variant=minbase --include=postgresql-$PG_MAJOR "$SUITE" "$root" "$MIRROR" >"$dir/debootstrap.log" 2>&1 ||
    fail "debootstrap $SUITE from $MIRROR failed; see $dir/debootstrap.log (and $root/debootstrap/debootstrap.log)"
  echo "postgres image: debootstrap done in $((SECONDS - s))s" >&2
  local lib=$root/usr/lib/postgresql/$PG_MAJOR/lib
  # The package's own cluster (its postinst's pg_createcluster) is not
  # used: the entrypoint makes one in PGDATA. libLLVM and libz3 serve only
  # the JIT provider (llvmjit.so).
  rm -rf "$root"/var/lib/postgresql/* "$root"/etc/postgresql/* "$root"/var/log/postgresql/* \
    "$root"/var/cache/apt/* "$root"/var/lib/apt/lists/* "$root"/var/cache/debconf/*-old \
    "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/usr/share/i18n/* "$root"/usr/share/postgresql/$PG_MAJOR/man \
    "$lib"/llvmjit*.so "$lib"/bitcode "$root"/usr/lib/*-linux-gnu/libLLVM-*.so* "$root"/usr/lib/*-linux-gnu/libz3.so* \
    "$root"/var/log/*.log "$root"/var/log/apt/* || fail "cannot trim $root"
  tar --numeric-owner --xattrs -C "$root" -cf "$tarball.tmp" . || fail "cannot write $tarball.tmp"
  mv "$tarball.tmp" "$tarball"
  rm -rf "$root"
  echo "postgres image: root filesystem $(du -h "$tarball" | cut -f1) in $tarball, $((SECONDS - s))s" >&2
}

if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  [ -f "$tarball" ] || build_rootfs
  s=$SECONDS
  docker import --message "PostgreSQL $PG_MAJOR on Debian $SUITE (tools/images/postgres/build.sh)" \
    --change 'ENTRYPOINT ["/usr/local/bin/postgres-entrypoint"]' \
    --change "ENV PATH=/usr/lib/postgresql/$PG_MAJOR/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin" \
    --change 'ENV PGDATA=/var/lib/postgresql/data' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'EXPOSE 5432' \
    "$tarball" "$BASE" >/dev/null || fail "docker import of $tarball as $BASE failed"
  echo "postgres image: imported $BASE in $((SECONDS - s))s" >&2
fi

# The entrypoint, and STOPSIGNAL, which `docker import --change` does not
# take on this engine (Docker 20.10). The classic builder uses the local $BASE, never
# pulls; each step costs a second or so.
s=$SECONDS
DOCKER_BUILDKIT=0 docker build --quiet --tag "$TAG" --file - "$here" >/dev/null 2>"$dir/build.log" <<DOCKERFILE || fail "docker build of $TAG from $BASE failed: $(cat "$dir/build.log")"
FROM $BASE
COPY entrypoint.sh /usr/local/bin/postgres-entrypoint
STOPSIGNAL SIGINT
LABEL $label=$want org.opencontainers.image.version=$PG_MAJOR-$REVISION
DOCKERFILE
echo "postgres image: built $TAG in $((SECONDS - s))s" >&2
echo "$TAG"
