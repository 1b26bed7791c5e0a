# A throwaway PostgreSQL cluster on 127.0.0.1 for the tests (source it, then pg_up / pg_down).
# As root the server runs as the system user postgres (initdb refuses root); data and socket live in a
# fresh temp directory; durability is off (the data is thrown away). Exports REGISTRY_TEST_POSTGRES_URL.
PGBIN=${PGBIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
_pg() { if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
pg_up() {
  [ -x "${PGBIN:-}/initdb" ] || { echo "pg-throwaway: no PostgreSQL server (apt-get install postgresql)" >&2; return 1; }
  id postgres >/dev/null 2>&1 || useradd --system --no-create-home postgres
  PGTMP=$(mktemp -d -t pgtmp.XXXXXX)
  if [ "$(id -u)" = 0 ]; then chown postgres: "$PGTMP"; fi
  _pg "$PGBIN/initdb" -D "$PGTMP/data" -U postgres -A trust -E UTF8 --no-locale --no-sync >"$PGTMP/initdb.log" 2>&1 \
    || { cat "$PGTMP/initdb.log" >&2; return 1; }
  local try
  for try in 1 2 3; do
    PGPORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    _pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -l "$PGTMP/server.log" -w -t 60 -o \
      "-c listen_addresses=127.0.0.1 -p $PGPORT -k $PGTMP -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
      start >/dev/null && break
    [ "$try" = 3 ] && { cat "$PGTMP/server.log" >&2; return 1; }
  done
  export PGTMP REGISTRY_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PGPORT/postgres"
}
pg_down() {
  [ -n "${PGTMP:-}" ] && [ -d "$PGTMP" ] || return 0
  _pg "$PGBIN/pg_ctl" -D "$PGTMP/data" -m fast -w -t 60 stop >/dev/null || true
  rm -rf "$PGTMP"; unset PGTMP REGISTRY_TEST_POSTGRES_URL
}
