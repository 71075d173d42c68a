#!/usr/bin/env bash
# Start a throwaway PostgreSQL server for the Iceberg SQL catalog of the Ceph tier: a fresh cluster in
# $P (default /tmp/stedi-pg) on 127.0.0.1 and a free port (or PG_PORT), trust auth for the local user
# `stedi`, no fsync (test data only). Needs Debian's postgresql. As root, the server runs as the
# `postgres` user (PostgreSQL refuses root). Writes STEDI_TEST_PG_URI to $P/env (sourced by .ci/run).
# Stop it with pg_down.sh.
set -euo pipefail
P=${P:-/tmp/stedi-pg}
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  echo "PostgreSQL server binaries not found (apt-get install postgresql)" >&2
  exit 1
fi
PORT=${PG_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
P="$P" "$HERE/pg_down.sh" >/dev/null 2>&1 || true
rm -rf "$P"; mkdir -p "$P"
as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
[ "$(id -u)" = 0 ] && chown postgres: "$P"
cd "$P"
as_owner "$BIN/initdb" -D "$P/data" -U stedi --auth=trust --encoding=UTF8 --no-sync >"$P/initdb.log"
as_owner "$BIN/pg_ctl" -D "$P/data" -l "$P/server.log" -w -t 60 start \
  -o "-c listen_addresses=127.0.0.1 -c port=$PORT -c unix_socket_directories=$P -c fsync=off" >/dev/null
cat > "$P/env" <<ENV
export STEDI_TEST_PG_URI=postgresql+psycopg2://stedi@127.0.0.1:$PORT/postgres
ENV
echo "postgresql ready on 127.0.0.1:$PORT (settings in $P/env)"
