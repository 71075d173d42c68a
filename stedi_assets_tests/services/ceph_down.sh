#!/usr/bin/env bash
# Stop the cluster ceph_up.sh started (radosgw, OSD, monitor).
C=${C:-/tmp/stedi-ceph}
for name in client.rgw.a osd.0 mon.a; do
  if [ -f "$C/run/$name.pid" ]; then kill "$(cat "$C/run/$name.pid")" 2>/dev/null || true; fi
done
sleep 1
pkill -f "radosgw -c $C/ceph.conf" 2>/dev/null || true
pkill -f "ceph-osd -c $C/ceph.conf" 2>/dev/null || true
pkill -f "ceph-mon -c $C/ceph.conf" 2>/dev/null || true
exit 0
