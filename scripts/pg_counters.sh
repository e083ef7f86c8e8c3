#!/usr/bin/env bash
# Repeatable write-path counters of one `tether bench` run on PostgreSQL (figures that machine
# load does not move, unlike wall-clock rates): WAL written during the run (bytes, records,
# full-page images; pg_stat_wal is cluster-wide, so nothing else should write meanwhile: the
# script prints the other client sessions it sees), and per table of the bench's schema the
# rows inserted, updated, updated HOT and deleted, and the indexes' scans.
#
#   scripts/pg_counters.sh TETHER_BIN PG_URL WORKLOAD [bench args...]
#   e.g. scripts/pg_counters.sh target/release/tether postgres://postgres@127.0.0.1:5432/test \
#            resume-throughput --n 1000
set -euo pipefail
bin=$1 url=$2
shift 2
q() { psql "$url" -AtqX -c "$1"; }
others=$(q "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()")
[ "$others" = 0 ] || echo "warning: $others other client session(s) connected" >&2
before=$(q "SELECT pg_current_wal_lsn() || ' ' || wal_records || ' ' || wal_fpi FROM pg_stat_wal")
err=$(mktemp)
TETHER_BENCH_KEEP_SCHEMA=1 "$bin" bench "$@" --db "$url" --json 2>"$err"
after=$(q "SELECT pg_current_wal_lsn() || ' ' || wal_records || ' ' || wal_fpi FROM pg_stat_wal")
schema=$(sed -n 's/^kept schema //p' "$err" | tail -1)
rm -f "$err"
read -r lsn0 rec0 fpi0 <<<"$before"
read -r lsn1 rec1 fpi1 <<<"$after"
echo "wal_bytes=$(q "SELECT pg_wal_lsn_diff('$lsn1', '$lsn0')") wal_records=$((rec1 - rec0)) wal_fpi=$((fpi1 - fpi0))"
# Backends publish their table counters when they end (the bench's have) or about once a second.
sleep 2
psql "$url" -qX -c "SELECT relname, n_tup_ins AS ins, n_tup_upd AS upd, n_tup_hot_upd AS hot,
                           n_tup_del AS del, seq_scan, idx_scan
                      FROM pg_stat_user_tables WHERE schemaname = '$schema'
                       AND n_tup_ins + n_tup_upd + n_tup_del + coalesce(idx_scan, 0) > 0
                     ORDER BY relname"
psql "$url" -qX -c "SELECT relname, indexrelname, idx_scan, idx_tup_read
                      FROM pg_stat_user_indexes WHERE schemaname = '$schema'
                       AND relname IN ('runs', 'events') ORDER BY relname, indexrelname"
q "DROP SCHEMA \"$schema\" CASCADE"
