# Sourced by run-with-services.sh: start a throwaway PostgreSQL cluster on a unix socket in a
# temporary folder (no TCP at all) and export EXHUNT_TEST_PG_URL for the store/cases tests.
# PostgreSQL refuses to run as root, so the server runs as the `postgres` system user.
exhunt_pg_find() {
  local name="$1" dir
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/$name" ]; then echo "$dir/$name"; return 0; fi
  done
  command -v "$name" 2>/dev/null || return 1
}

if ! exhunt_pg_find initdb >/dev/null; then
  echo "start-postgres: PostgreSQL not found, installing it with apt-get" >&2
  { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql; } >&2 \
    || true
fi

EXHUNT_PG_INITDB="$(exhunt_pg_find initdb || true)"
EXHUNT_PG_CTL="$(exhunt_pg_find pg_ctl || true)"
if [ -z "$EXHUNT_PG_INITDB" ] || [ -z "$EXHUNT_PG_CTL" ]; then
  echo "start-postgres: no initdb/pg_ctl; PostgreSQL tests will fail loudly" >&2
else
  EXHUNT_PG_ROOT="$(mktemp -d /tmp/exhunt-pg.XXXXXX)"
  mkdir -p "$EXHUNT_PG_ROOT/data" "$EXHUNT_PG_ROOT/sock" "$EXHUNT_PG_ROOT/log"
  chmod 755 "$EXHUNT_PG_ROOT"
  if [ "$(id -u)" = 0 ]; then
    chown postgres: "$EXHUNT_PG_ROOT/data" "$EXHUNT_PG_ROOT/sock" "$EXHUNT_PG_ROOT/log"
    exhunt_pg_as() { runuser -u postgres -- "$@"; }
  else
    exhunt_pg_as() { "$@"; }
  fi
  EXHUNT_PG_USER="$( [ "$(id -u)" = 0 ] && echo postgres || id -un )"
  if exhunt_pg_as "$EXHUNT_PG_INITDB" -A trust -U "$EXHUNT_PG_USER" -D "$EXHUNT_PG_ROOT/data" \
        >"$EXHUNT_PG_ROOT/log/initdb.log" 2>&1 \
     && exhunt_pg_as "$EXHUNT_PG_CTL" -D "$EXHUNT_PG_ROOT/data" -l "$EXHUNT_PG_ROOT/log/server.log" \
        -o "-k $EXHUNT_PG_ROOT/sock -c listen_addresses='' -c fsync=off -c max_connections=200" \
        -w start >/dev/null 2>&1; then
    export EXHUNT_TEST_PG_URL="postgresql+psycopg://$EXHUNT_PG_USER@/postgres?host=$EXHUNT_PG_ROOT/sock"
    echo "start-postgres: cluster up, EXHUNT_TEST_PG_URL=$EXHUNT_TEST_PG_URL" >&2
  else
    echo "start-postgres: cluster did not start; see below" >&2
    cat "$EXHUNT_PG_ROOT"/log/*.log >&2 || true
  fi
fi
