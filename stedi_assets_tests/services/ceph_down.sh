#!/usr/bin/env bash
# Stop the cluster ceph_up.sh started in $C (radosgw, OSD, monitor), by the pids it recorded: another
# cluster on the same machine is left alone.
C=${C:-/tmp/stedi-ceph}
pids=()
for name in client.rgw.a osd.0 mon.a; do
  if [ -f "$C/run/$name.pid" ]; then
    pid=$(cat "$C/run/$name.pid")
    kill "$pid" 2>/dev/null && pids+=("$pid")
  fi
done
for _ in $(seq 1 50); do           # up to 5 s for a clean exit, then force
  alive=0
  for pid in "${pids[@]}"; do kill -0 "$pid" 2>/dev/null && alive=1; done
  [ "$alive" = 0 ] && exit 0
  sleep 0.1
done
for pid in "${pids[@]}"; do kill -9 "$pid" 2>/dev/null || true; done
exit 0
