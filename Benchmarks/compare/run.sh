#!/usr/bin/env bash
# Benchmarks/compare/run.sh: TxLog next to other engines and the machine's limits, side by side in one
# run on one directory (`make compare` runs it).
#
#   bash Benchmarks/compare/run.sh [WORKDIR]
#
# 1. Installs what is missing from Debian packages (fio, lz4, gzip, rocksdb-tools, libleveldb-dev,
#    libsqlite3-dev, postgresql-15, gcc, python3, and TxLog's own build dependencies), with sudo
#    unless root, and builds `txlog` in release (`swift build -c release --product txlog`).
# 2. Measures, each point for COMPARE_SECONDS:
#    - limits: fio 4 KiB write + fdatasync at queue depth 1 (before and after our commit run), fio
#      sequential buffered write bandwidth, `lz4 -b1 -B65536` on the same bytes as our lz4;
#    - RocksDB db_bench fillseq, 100-byte values, sync=1, at 1 and 16 threads;
#    - LevelDB sync=true puts of 100-byte values at 1 and 16 threads (leveldb_bench.c);
#    - SQLite, WAL mode, synchronous=FULL, one single-row INSERT transaction per operation (sqlite_bench.c);
#    - PostgreSQL 15 on a temporary cluster: single-row INSERT commits, and BEGIN; INSERT;
#      PREPARE TRANSACTION; COMMIT PREPARED, from pgbench at 1 and 16 clients;
#    - ours at the same concurrency and record size: `txlog bench commit`, `bench kv`, `bench 2pc`,
#      `bench append` (64 KiB records flushed every 4 MiB) and `bench compress`.
# 3. Real transaction-log bytes: PostgreSQL WAL made by pgbench (TPC-B-like) and RocksDB WAL made by
#    db_bench fillrandom are appended as records to our log with each codec (`txlog bench compress
#    --input`), next to `lz4 -b1 -B65536` and `gzip -1`/`-6` on the same bytes cut into 64 KiB blocks.
# 4. report.py prints the table (absolute figures, ours over peer, ours over limit, the issue's
#    targets), writes results.tsv, and rewrites the generated section of docs/PERFORMANCE.md (between
#    `<!-- compare:begin -->` and `<!-- compare:end -->`) and docs/compare.svg.
#
# Every engine uses the one work directory: WORKDIR, or $COMPARE_DIR, or a new directory under
# /var/tmp. It must be empty or absent, and it is removed at the end (the PostgreSQL cluster is
# stopped first). Raw outputs and results.tsv are copied to .build/compare-results/ (ignored by git).
#
# Environment:
#   COMPARE_SECONDS   seconds per measured point (default 5); the whole run takes about 5 minutes
#                     plus the build at the default
#   COMPARE_WAL_MIB   MiB of real WAL taken from PostgreSQL and from RocksDB (default 32)
#   COMPARE_PG_PORT   port of the temporary PostgreSQL cluster (default 54329; unix socket only)
#   COMPARE_TXLOG     a txlog binary to use instead of building one
#   COMPARE_KEEP=1    keep the work directory
#   COMPARE_DOCS=0    print the table only; leave docs/PERFORMANCE.md and docs/compare.svg alone
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
SECONDS_PER_POINT=${COMPARE_SECONDS:-5}
WAL_MIB=${COMPARE_WAL_MIB:-32}
PG_PORT=${COMPARE_PG_PORT:-54329}
SUDO=$([ "$(id -u)" = 0 ] || echo sudo)
PGBIN=/usr/lib/postgresql/15/bin

case "${1:-}" in
-h | --help)
    sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'
    exit 0
    ;;
esac
[[ $SECONDS_PER_POINT =~ ^[0-9]+([.][0-9]+)?$ ]] || { echo "COMPARE_SECONDS must be a number" >&2; exit 2; }
[[ $WAL_MIB =~ ^[0-9]+$ && $WAL_MIB -ge 1 ]] || { echo "COMPARE_WAL_MIB must be a positive integer" >&2; exit 2; }

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---------------------------------------------------------------------------------------------------
# Packages and build

install_packages() {
    local need=() p
    for p in fio lz4 gzip rocksdb-tools libleveldb-dev libsqlite3-dev postgresql-15 gcc libc6-dev \
        liblz4-dev zlib1g-dev pkg-config; do
        dpkg -s "$p" >/dev/null 2>&1 || need+=("$p")
    done
    command -v python3 >/dev/null || need+=(python3)
    if ((${#need[@]})); then
        say "installing: ${need[*]}"
        $SUDO apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}"
    fi
    [[ -x $PGBIN/pgbench ]] || {
        say "installing postgresql-contrib (pgbench)"
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql-contrib
    }
}

build_txlog() {
    if [[ -n ${COMPARE_TXLOG:-} ]]; then
        TXLOG=$COMPARE_TXLOG
    else
        say "building txlog (release)"
        (cd "$REPO" && swift build -c release --product txlog)
        TXLOG=$REPO/.build/release/txlog
    fi
    [[ -x $TXLOG ]] || { echo "no txlog binary at $TXLOG" >&2; exit 1; }
}

# ---------------------------------------------------------------------------------------------------
# Work directory, clean-up

WORK='' DATA='' RES='' PGDATA='' PGSOCK=''

setup_work() {
    WORK=${1:-${COMPARE_DIR:-}}
    if [[ -z $WORK ]]; then
        WORK=$(mktemp -d /var/tmp/txlog-compare.XXXXXX)
    else
        if [[ -e $WORK && -n $(ls -A "$WORK" 2>/dev/null) ]]; then
            echo "work directory $WORK is not empty (it is removed at the end, so it must be new or empty)" >&2
            exit 2
        fi
        mkdir -p "$WORK"
        WORK=$(cd "$WORK" && pwd)
    fi
    DATA=$WORK/data RES=$WORK/results PGDATA=$WORK/data/pg/data PGSOCK=$WORK/data/pg/sock
    mkdir -p "$DATA" "$RES" "$WORK/bin"
    chmod 755 "$WORK" "$DATA" # the PostgreSQL server runs as `postgres` and must reach $DATA/pg
    trap cleanup EXIT
    trap 'exit 130' INT TERM # runs cleanup too
}

cleanup() {
    local rc=$?
    set +e
    if pg_running; then as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m immediate -w stop >/dev/null 2>&1; fi
    if [[ -n $RES && -d $RES ]]; then
        rm -rf "$REPO/.build/compare-results"
        mkdir -p "$REPO/.build"
        cp -r "$RES" "$REPO/.build/compare-results"
    fi
    if [[ ${COMPARE_KEEP:-0} == 1 ]]; then
        say "kept the work directory $WORK"
    elif [[ -n $WORK ]]; then
        rm -rf "$WORK"
    fi
    exit $rc
}

# Runs a measuring step; a failure is recorded in failures.txt and the run goes on, so one missing
# peer doesn't lose the others (its rows then say "n/a").
step() {
    local name=$1 rc
    shift
    say "$name"
    set +e
    (
        set -e
        "$@"
    )
    rc=$?
    set -e
    if ((rc != 0)); then
        say "FAILED: $name (exit $rc)"
        printf '%s\texit %s\n' "$name" "$rc" >>"$RES/failures.txt"
    fi
}

# ---------------------------------------------------------------------------------------------------
# Machine description

describe_machine() {
    local phase=$1
    {
        printf 'uptime\t%s\n' "$(uptime)"
        printf 'loadavg\t%s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
        printf 'time\t%s\n' "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
    } >"$RES/load-$phase.tsv"
    [[ $phase == start ]] || return 0
    {
        printf 'work_dir\t%s\n' "$WORK"
        printf 'filesystem\t%s\n' "$(df -T "$WORK" | awk 'NR == 2 { print $2 " (" $1 ")" }')"
        printf 'mount_options\t%s\n' "$(findmnt -n -o OPTIONS --target "$WORK" 2>/dev/null || echo unknown)"
        printf 'seconds\t%s\n' "$SECONDS_PER_POINT"
        printf 'wal_mib\t%s\n' "$WAL_MIB"
        printf 'commit\t%s%s\n' "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)" \
            "$(git -C "$REPO" diff --quiet HEAD -- Sources 2>/dev/null || echo ' (uncommitted changes in Sources/)')"
        printf 'swift\t%s\n' "$(swift --version 2>&1 | head -n1)"
        local p
        for p in fio lz4 gzip rocksdb-tools librocksdb7.8 libleveldb1d libsqlite3-0 postgresql-15 liblz4-1 zlib1g; do
            printf 'package:%s\t%s\n' "$p" "$(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo 'not installed')"
        done
    } >"$RES/machine.tsv"
}

# ---------------------------------------------------------------------------------------------------
# The limits: fio

fio_fdatasync() { # 4 KiB writes, each followed by fdatasync, one job, queue depth 1, overwriting allocated blocks
    fio --name=fdatasync --filename="$DATA/fio-sync.dat" --size=64M --bs=4k --rw=write --fdatasync=1 \
        --ioengine=sync --iodepth=1 --overwrite=1 --runtime="$SECONDS_PER_POINT" --time_based \
        --output-format=json >"$RES/fio-fdatasync-$1.json"
    rm -f "$DATA/fio-sync.dat"
}

fio_buffered() { # 1 MiB sequential buffered writes, one fsync at the end
    fio --name=buffered --filename="$DATA/fio-seq.dat" --size=64M --bs=1M --rw=write --end_fsync=1 \
        --ioengine=sync --runtime="$SECONDS_PER_POINT" --time_based --output-format=json >"$RES/fio-buffered.json"
    rm -f "$DATA/fio-seq.dat"
}

# ---------------------------------------------------------------------------------------------------
# Ours

ours() { # name, txlog bench arguments...
    local name=$1
    shift
    "$TXLOG" bench "$@" --dir "$DATA/txlog" --seconds "$SECONDS_PER_POINT" --json >"$RES/ours-$name.json"
    rm -rf "$DATA/txlog"
}

# ---------------------------------------------------------------------------------------------------
# LevelDB, SQLite (C harnesses), RocksDB (db_bench)

build_harnesses() {
    gcc -O2 -Wall -pthread -o "$WORK/bin/leveldb_bench" "$HERE/leveldb_bench.c" -lleveldb
    gcc -O2 -Wall -pthread -o "$WORK/bin/sqlite_bench" "$HERE/sqlite_bench.c" -lsqlite3
}

harness() { # engine threads
    local engine=$1 n=$2 path=$DATA/$1-$2
    if [[ $engine == sqlite ]]; then path=$DATA/sqlite-$n.db; fi
    "$WORK/bin/${engine}_bench" --path "$path" --threads "$n" --seconds "$SECONDS_PER_POINT" --value-size 100 \
        >"$RES/$engine-$n.json"
    rm -rf "$path" "$path-wal" "$path-shm"
}

db_bench_rate() { awk '$1 == "fillseq" { for (i = 1; i <= NF; i++) if ($i == "ops/sec") print $(i - 1) }' "$1"; }

rocksdb() { # threads. fillseq ignores --duration, so a short calibration run sets --num for about COMPARE_SECONDS.
    local n=$1 db=$DATA/rocksdb-$1 calibration rate num
    calibration=$((n == 1 ? 1000 : 200))
    db_bench --benchmarks=fillseq --sync=1 --threads="$n" --num="$calibration" --value_size=100 --key_size=16 \
        --db="$db" >"$RES/rocksdb-$n-calibration.txt" 2>&1
    rate=$(db_bench_rate "$RES/rocksdb-$n-calibration.txt")
    [[ -n $rate ]] || { echo "db_bench printed no fillseq rate" >&2; return 1; }
    num=$(awk -v r="$rate" -v s="$SECONDS_PER_POINT" -v n="$n" 'BEGIN { x = int(r * s / n); print (x < 200 ? 200 : x) }')
    rm -rf "$db"
    db_bench --benchmarks=fillseq --sync=1 --threads="$n" --num="$num" --value_size=100 --key_size=16 \
        --histogram=1 --db="$db" >"$RES/rocksdb-$n.txt" 2>&1
    rm -rf "$db"
}

rocksdb_wal() { # RocksDB WAL bytes: fillrandom with a memtable large enough that nothing is flushed
    local num=$((WAL_MIB * 1048576 / 138 + 1000))
    mkdir -p "$DATA/wal"
    db_bench --benchmarks=fillrandom --num="$num" --value_size=100 --key_size=16 --sync=0 \
        --disable_auto_compactions=1 --write_buffer_size=$((2 << 30)) --wal_dir="$DATA/rocksdb-wal" \
        --db="$DATA/rocksdb-walsrc" >"$RES/rocksdb-wal.txt" 2>&1
    cat "$DATA"/rocksdb-wal/*.log >"$DATA/wal/rocksdb.wal"
    if (($(stat -c %s "$DATA/wal/rocksdb.wal") > WAL_MIB << 20)); then truncate -s $((WAL_MIB << 20)) "$DATA/wal/rocksdb.wal"; fi
    rm -rf "$DATA/rocksdb-wal" "$DATA/rocksdb-walsrc"
    [[ -s $DATA/wal/rocksdb.wal ]]
}

# ---------------------------------------------------------------------------------------------------
# PostgreSQL 15, a temporary cluster on a private port and socket directory

# As the cluster's owner: `postgres` when running as root (the server refuses root), else ourselves.
as_pg() { if [[ $(id -u) == 0 ]]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi; }
pg_running() { [[ -n $PGDATA && -f $PGDATA/postmaster.pid ]]; }
psql_bench() { "$PGBIN/psql" -X -q -A -t -h "$PGSOCK" -p "$PG_PORT" -U postgres -d "${PGDB:-bench}" -v ON_ERROR_STOP=1 "$@"; }

pg_start() {
    mkdir -p "$PGSOCK"
    if [[ $(id -u) == 0 ]]; then chown -R postgres: "$DATA/pg"; fi
    as_pg "$PGBIN/initdb" -D "$PGDATA" -A trust -U postgres -E UTF8 --no-sync >"$RES/pg-initdb.log" 2>&1
    cat >>"$PGDATA/postgresql.conf" <<EOF
# Benchmarks/compare/run.sh
listen_addresses = ''
port = $PG_PORT
unix_socket_directories = '$PGSOCK'
fsync = on
synchronous_commit = on
full_page_writes = on
max_prepared_transactions = 64
max_connections = 100
shared_buffers = 256MB
EOF
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -l "$DATA/pg/server.log" -w -t 60 start >/dev/null
    PGDB=postgres psql_bench -c "CREATE DATABASE bench"
    psql_bench -c "CREATE TABLE cmp_t (cid integer, v text)"
    cat >"$DATA/pg/commit.sql" <<'EOF'
INSERT INTO cmp_t (cid, v) VALUES (:client_id, repeat('x', 100));
EOF
    cat >"$DATA/pg/prepared.sql" <<'EOF'
\set r random(1, 2000000000)
BEGIN;
INSERT INTO cmp_t (cid, v) VALUES (:client_id, repeat('x', 100));
PREPARE TRANSACTION 'cmp-:client_id-:r';
COMMIT PREPARED 'cmp-:client_id-:r';
EOF
}

pgbench_run() { # script clients output [extra pgbench arguments]
    local script=$1 n=$2 out=$3 jobs=$(($2 < 2 ? 1 : 2))
    shift 3
    "$PGBIN/pgbench" -n -h "$PGSOCK" -p "$PG_PORT" -U postgres -c "$n" -j "$jobs" "$@" -f "$script" bench >"$out" 2>&1
}

pg_point() { # commit|prepared clients
    local kind=$1 n=$2
    pgbench_run "$DATA/pg/$kind.sql" "$n" /dev/null -T 1 # warm-up, not counted
    pgbench_run "$DATA/pg/$kind.sql" "$n" "$RES/pg-$kind-$n.txt" -T "$SECONDS_PER_POINT"
    grep -q '^tps = ' "$RES/pg-$kind-$n.txt"
}

pg_wal() { # PostgreSQL WAL bytes: pgbench's TPC-B-like script for COMPARE_SECONDS, the LSN range it wrote
    local start end
    mkdir -p "$DATA/wal"
    "$PGBIN/pgbench" -i -s 4 -q -h "$PGSOCK" -p "$PG_PORT" -U postgres bench >"$RES/pg-wal-init.txt" 2>&1
    # After a checkpoint, as in production, the first change to each page logs a full-page image.
    psql_bench -c "CHECKPOINT"
    start=$(psql_bench -c "SELECT pg_current_wal_lsn()")
    "$PGBIN/pgbench" -n -h "$PGSOCK" -p "$PG_PORT" -U postgres -c 8 -j 2 -T "$SECONDS_PER_POINT" bench >"$RES/pg-wal-tpcb.txt" 2>&1
    end=$(psql_bench -c "SELECT pg_current_wal_flush_lsn()")
    python3 -B "$HERE/pg_wal_slice.py" --wal-dir "$PGDATA/pg_wal" --start "$start" --end "$end" \
        --max-bytes $((WAL_MIB << 20)) --out "$DATA/wal/postgresql.wal" >"$RES/pg-wal-slice.txt"
}

pg_stop() {
    as_pg "$PGBIN/pg_ctl" -D "$PGDATA" -m fast -w stop >/dev/null
    rm -rf "$DATA/pg"
}

# ---------------------------------------------------------------------------------------------------
# Real WAL bytes: our log with each codec, and the lz4 / gzip command-line tools on the same bytes

# 8160-byte records: 8 records and their 24-byte headers fill the 65,472 payload bytes of a 64 KiB block,
# so each of our blocks compresses 64 KiB of the input, like the CLIs' 64 KiB blocks.
wal_compression() { # name
    local name=$1 file=$DATA/wal/$1.wal blocks=$DATA/gzip-$1 level bytes t0 t1 packed
    "$TXLOG" bench compress --dir "$DATA/txlog" --input "$file" --record-size 8160 --codecs none,lz4,zlib:1,zlib:6 \
        --seconds "$SECONDS_PER_POINT" --json >"$RES/ours-walcomp-$name.json"
    rm -rf "$DATA/txlog"
    # gzip on the same bytes cut into the same 64 KiB blocks: one process over all block files.
    mkdir -p "$blocks"
    split -b 65536 -a 6 -d "$file" "$blocks/b."
    bytes=$(stat -c %s "$file")
    for level in 1 6; do
        t0=$(date +%s%N)
        gzip "-$level" -n -k -f "$blocks"/b.??????
        t1=$(date +%s%N)
        packed=$(cat "$blocks"/b.*.gz | wc -c)
        rm -f "$blocks"/b.*.gz
        printf '{"tool":"gzip -%s","bytes":%s,"compressedBytes":%s,"nanoseconds":%s}\n' \
            "$level" "$bytes" "$packed" "$((t1 - t0))" >>"$RES/gzip-$name.json"
    done
    rm -rf "$blocks"
}

# ---------------------------------------------------------------------------------------------------

main() {
    install_packages
    build_txlog
    setup_work "${1:-}"
    say "work directory $WORK, $SECONDS_PER_POINT s per point"
    describe_machine start
    build_harnesses

    step "fio: 4 KiB write + fdatasync, QD1 (before)" fio_fdatasync before
    step "ours: log commits, 1 and 16 writers, 100 B" ours commit commit --writers 1,16 --record-size 100
    step "fio: 4 KiB write + fdatasync, QD1 (after)" fio_fdatasync after
    step "fio: sequential buffered write" fio_buffered
    step "ours: 64 KiB records flushed every 4 MiB" ours append append --sizes 65536 --codecs none --container-mib 128 --containers 4
    step "ours: compression, synthetic records, lz4 CLI" ours compress compress --mib 32 --codecs none,lz4,zlib:1,zlib:6
    for n in 1 16; do step "LevelDB: sync puts, $n threads" harness leveldb "$n"; done
    for n in 1 16; do step "RocksDB: fillseq sync=1, $n threads" rocksdb "$n"; done
    for n in 1 16; do step "SQLite: WAL FULL inserts, $n threads" harness sqlite "$n"; done
    step "ours: KV 1-put transactions, 1 and 16 clients" ours kv kv --clients 1,16 --value-size 100 --keys 0
    step "PostgreSQL: start a temporary cluster" pg_start
    if pg_running; then
        for n in 1 16; do step "PostgreSQL: commits, $n clients" pg_point commit "$n"; done
        for n in 1 16; do step "PostgreSQL: PREPARE/COMMIT PREPARED, $n clients" pg_point prepared "$n"; done
    fi
    step "ours: 2PC across 2 RMs, 1 and 16 clients" ours 2pc 2pc --clients 1,16 --record-size 100
    if pg_running; then
        step "PostgreSQL: WAL from pgbench (TPC-B-like)" pg_wal
        step "PostgreSQL: stop the cluster" pg_stop
    fi
    step "RocksDB: WAL from db_bench fillrandom" rocksdb_wal
    for name in postgresql rocksdb; do
        if [[ -s $DATA/wal/$name.wal ]]; then step "compression of $name WAL: ours, lz4, gzip" wal_compression "$name"; fi
    done
    describe_machine end

    local docs=(--docs "$REPO/docs/PERFORMANCE.md" --svg "$REPO/docs/compare.svg")
    if [[ ${COMPARE_DOCS:-1} == 0 ]]; then docs=(); fi
    python3 -B "$HERE/report.py" --results "$RES" "${docs[@]}"
    say "raw results: $REPO/.build/compare-results/ (results.tsv and each tool's output)"
}

main "$@"
