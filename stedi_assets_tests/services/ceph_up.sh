#!/usr/bin/env bash
# Start a single-node Ceph cluster with a RADOS Gateway on 127.0.0.1:${CEPH_RGW_PORT:-7480}: one
# monitor (port ${CEPH_MON_PORT:-3300}), one OSD on memstore (RAM, nothing on disk to clean), cephx auth,
# and an S3 user. C, CEPH_RGW_PORT and CEPH_MON_PORT let two clusters run side by side on one machine.
# Needs Debian's radosgw ceph-mon ceph-osd ceph-common. Writes the S3 settings for the tests to
# $C/env (sourced by .ci/run). Stop it with ceph_down.sh.
set -euo pipefail
C=${C:-/tmp/stedi-ceph}
PORT=${CEPH_RGW_PORT:-7480}
MON_PORT=${CEPH_MON_PORT:-3300}
"$(dirname "$0")/ceph_down.sh" >/dev/null 2>&1 || true
rm -rf "$C"; mkdir -p "$C"/{mon,osd0,rgw,run,log}; cd "$C"
FSID=$(python3 -c 'import uuid; print(uuid.uuid4())')
cat > ceph.conf <<CONF
[global]
fsid = $FSID
mon_host = v2:127.0.0.1:$MON_PORT
mon_initial_members = a
keyring = $C/\$name.keyring
osd_pool_default_size = 1
osd_pool_default_min_size = 1
mon_allow_pool_size_one = true
mon_warn_on_pool_no_redundancy = false
osd_pool_default_pg_autoscale_mode = off
osd_pool_default_pg_num = 8
osd_pool_default_pgp_num = 8
mon_max_pg_per_osd = 1000
mon_data_avail_warn = 1
osd_objectstore = memstore
memstore_device_bytes = 4294967296
osd_crush_chooseleaf_type = 0
run_dir = $C/run
log_file = $C/log/\$name.log
admin_socket = $C/run/\$name.asok
pid_file = $C/run/\$name.pid
public_addr = 127.0.0.1
ms_bind_ipv6 = false
[mon.a]
mon_data = $C/mon
[osd.0]
osd_data = $C/osd0
[client.rgw.a]
rgw_frontends = beast endpoint=127.0.0.1:$PORT tcp_nodelay=1
rgw_data = $C/rgw
CONF
ceph-authtool --create-keyring mon..keyring --gen-key -n mon. --cap mon 'allow *' >/dev/null
ceph-authtool --create-keyring client.admin.keyring --gen-key -n client.admin --cap mon 'allow *' --cap osd 'allow *' --cap mgr 'allow *' >/dev/null
ceph-authtool mon..keyring --import-keyring client.admin.keyring >/dev/null
monmaptool --create --addv a "[v2:127.0.0.1:$MON_PORT]" --fsid "$FSID" monmap >/dev/null
ceph-mon -c ceph.conf --mkfs -i a --monmap monmap --keyring mon..keyring
cp mon..keyring mon.a.keyring
ceph-mon -c ceph.conf -i a
OSD=$(ceph -c ceph.conf osd create)
ceph-authtool --create-keyring "osd.$OSD.keyring" --gen-key -n "osd.$OSD" >/dev/null
ceph -c ceph.conf auth add "osd.$OSD" osd 'allow *' mon 'allow profile osd' -i "osd.$OSD.keyring" >/dev/null
ceph-osd -c ceph.conf -i "$OSD" --mkfs --no-mon-config 2>/dev/null
ceph -c ceph.conf osd crush add "osd.$OSD" 1.0 host=localhost root=default >/dev/null
ceph-osd -c ceph.conf -i "$OSD" 2>/dev/null
ceph -c ceph.conf auth get-or-create client.rgw.a mon 'allow rw' osd 'allow rwx' -o client.rgw.a.keyring
radosgw -c ceph.conf -n client.rgw.a

KEY=stedi$(python3 -c 'import secrets; print(secrets.token_hex(6))')
SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(20))')
radosgw-admin -c ceph.conf -n client.admin user create --uid=stedi --display-name=stedi \
  --access-key="$KEY" --secret="$SECRET" >/dev/null
for i in $(seq 1 120); do
  if python3 -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT', timeout=2)" 2>/dev/null; then
    break
  fi
  sleep 0.5
done
cat > "$C/env" <<ENV
export STEDI_TEST_CEPH_ENDPOINT=http://127.0.0.1:$PORT
export STEDI_TEST_CEPH_KEY=$KEY
export STEDI_TEST_CEPH_SECRET=$SECRET
ENV
echo "ceph radosgw ready on http://127.0.0.1:$PORT (settings in $C/env)"
