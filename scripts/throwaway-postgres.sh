#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL cluster on 127.0.0.1 for the tests.
#   scripts/throwaway-postgres.sh start DIR   -> prints the admin URL (export it as TEST_POSTGRES_URL)
#   scripts/throwaway-postgres.sh stop DIR
# initdb refuses to run as root, so as root the cluster runs as the 'postgres' system user (or 'nobody').
set -euo pipefail
action=${1:?start|stop}
dir=${2:?directory for the cluster}
bin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$bin/initdb" ] || bin=$(dirname "$(command -v initdb)")

as_owner() {
  if [ "$(id -u)" = 0 ]; then
    local owner=postgres
    id -u postgres >/dev/null 2>&1 || owner=nobody
    runuser -u "$owner" -- "$@"
  else
    "$@"
  fi
}

case "$action" in
  start)
    mkdir -p "$dir"
    if [ "$(id -u)" = 0 ]; then
      owner=postgres; id -u postgres >/dev/null 2>&1 || owner=nobody
      chown "$owner" "$dir"
    fi
    port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$dir/pgdata" -U curation --auth=trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/pgdata" -l "$dir/postgres.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
      start >/dev/null || { cat "$dir/postgres.log" >&2; exit 1; }
    echo "postgresql+psycopg://curation@127.0.0.1:$port/postgres"
    ;;
  stop)
    [ -d "$dir/pgdata" ] && as_owner "$bin/pg_ctl" -D "$dir/pgdata" -m immediate stop >/dev/null 2>&1 || true
    ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
