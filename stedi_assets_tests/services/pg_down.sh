#!/usr/bin/env bash
# Stop the server pg_up.sh started in $P (its own cluster only) and remove it.
P=${P:-/tmp/stedi-pg}
BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)
if [ -f "$P/data/postmaster.pid" ] && [ -n "$BIN" ]; then
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$BIN/pg_ctl" -D "$P/data" -m immediate -w stop >/dev/null 2>&1 || true
  else
    "$BIN/pg_ctl" -D "$P/data" -m immediate -w stop >/dev/null 2>&1 || true
  fi
fi
rm -rf "$P"
exit 0
