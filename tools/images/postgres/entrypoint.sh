#!/bin/sh
# Entrypoint of tenantflow/postgres (tools/images/postgres/build.sh). Runs as
# root: owns PGDATA for the postgres user, creates the cluster the first
# time (PGDATA empty), then replaces itself with the server run as postgres,
# so the server is PID 1 and gets the engine's stop signal (SIGINT: a fast
# shutdown). Arguments are passed to postgres (e.g. -c work_mem=8MB).
#
# POSTGRES_PASSWORD (required): the password of POSTGRES_USER.
# POSTGRES_USER, POSTGRES_DB: the superuser and its database ("tenant").
# Local (socket) connections are trusted, TCP ones need the password
# (scram-sha-256); the server listens on every address.
set -eu
PGDATA=${PGDATA:-/var/lib/postgresql/data}
POSTGRES_USER=${POSTGRES_USER:-tenant}
POSTGRES_DB=${POSTGRES_DB:-$POSTGRES_USER}
export PGDATA

fail() { echo "postgres entrypoint: $*" >&2; exit 1; }
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

mkdir -p "$PGDATA" /run/postgresql || fail "cannot create $PGDATA or /run/postgresql"
chown postgres:postgres "$PGDATA" /run/postgresql || fail "cannot chown $PGDATA to postgres"
chmod 700 "$PGDATA" || fail "cannot chmod $PGDATA"

# A first start that fails leaves PGDATA empty again, so that the next one
# (the engine restarts the container) starts over.
init_failed() {
  [ ! -f "$PGDATA/postmaster.pid" ] || as_postgres pg_ctl -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1
  find "$PGDATA" -mindepth 1 -delete 2>/dev/null
  fail "$@"
}

if [ -z "$(ls -A "$PGDATA")" ]; then
  [ -n "${POSTGRES_PASSWORD:-}" ] || fail "POSTGRES_PASSWORD is required to create the database in $PGDATA"
  pwfile=$(mktemp) || fail "cannot create a temporary password file"
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  chown postgres "$pwfile"
  as_postgres initdb --username="$POSTGRES_USER" --pwfile="$pwfile" \
    --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --locale=C.UTF-8 >/dev/null || { rm -f "$pwfile"; init_failed "initdb of $PGDATA failed"; }
  rm -f "$pwfile"
  echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf" || init_failed "cannot write $PGDATA/postgresql.conf"
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf" || init_failed "cannot write $PGDATA/pg_hba.conf"
  if [ "$POSTGRES_DB" != postgres ]; then
    # A server on the socket only, stopped again once the database exists.
    as_postgres pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null || init_failed "cannot start postgres to create database $POSTGRES_DB"
    as_postgres createdb --username="$POSTGRES_USER" --owner="$POSTGRES_USER" "$POSTGRES_DB" || init_failed "cannot create database $POSTGRES_DB"
    as_postgres pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null || init_failed "cannot stop postgres after creating database $POSTGRES_DB"
  fi
  echo "postgres entrypoint: created the cluster in $PGDATA (user $POSTGRES_USER, database $POSTGRES_DB)" >&2
elif [ ! -s "$PGDATA/PG_VERSION" ]; then
  fail "$PGDATA is neither empty nor a database cluster (no PG_VERSION): was its first start killed? Empty it to make a new cluster"
fi

exec setpriv --reuid=postgres --regid=postgres --init-groups -- postgres -D "$PGDATA" "$@"
