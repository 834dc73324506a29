#!/usr/bin/env bash
# Kill-loop supervisor (reliability issue, part 5; harness T3 from the outside). Runs the two crash
# workloads of the txlog tool as child processes, SIGKILLs each run after a random delay, and after every
# kill runs the workload's checker against everything acknowledged so far:
#
#   kv   `txlog workload run` (the TransactionalKV bank: two stores, 2PC and one-phase commits), then
#        `txlog workload check`: every acknowledged transfer present, none half-visible, balance conserved.
#   churn `txlog workload churn` (puts, deletes, write sets over many 1 KiB blocks, oversize write sets,
#        one- and two-store transactions on a log of 512 KiB containers), then `txlog workload churn-check`:
#        both stores exactly as the deterministic model of the transactions the stores say committed, at
#        least through each client's last acknowledged one (scans, gets and counts agreeing). A new
#        workload every 25 iterations.
#   raw  `txlog stress run` (8 threads appending and flushing self-checking records on a 4 x 512 KiB log
#        that recycles), then `txlog stress check`: every acknowledged record at or above the base intact,
#        every record intact, each writer's records in order. A new log every 10 iterations, with another
#        codec, record size and flush interval.
#
# Acknowledgements are cumulative: a line a killed run printed completely must hold after every later crash.
# The loop stops at the first failure and keeps its directory for inspection; otherwise it removes it
# (KEEP=1 keeps it). Prints one line per iteration with VERBOSE=1 and a summary at the end.
#
# Usage: tools/killloop.sh [kv|raw|churn|both|all]  (both: kv and raw; default all)
#   TXLOG=path/to/txlog   the binary (default .build/release/txlog; `make killloop` builds it)
#   ITERATIONS=N          kills per workload (default 50)
#   SEED=n                seed of the random delays and options (default: random, printed)
#   KILLLOOP_DIR=dir      where the logs go (default: a new directory under ${TMPDIR:-/tmp})
set -uo pipefail

TXLOG=${TXLOG:-.build/release/txlog}
ITERATIONS=${ITERATIONS:-50}
SEED=${SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
WHICH=${1:-all}
RANDOM=$SEED
[ -x "$TXLOG" ] || { echo "killloop: no txlog binary at $TXLOG (set TXLOG or run make killloop)" >&2; exit 2; }
case "$WHICH" in kv|raw|churn|both|all) ;; *) echo "usage: $0 [kv|raw|churn|both|all]" >&2; exit 64 ;; esac
WORK=${KILLLOOP_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/txlog-killloop.XXXXXX")}
mkdir -p "$WORK"
echo "killloop: $ITERATIONS iterations per workload ($WHICH), seed $SEED, binary $TXLOG, directory $WORK"

# A random delay in seconds from $1 to $2 milliseconds, printed as a decimal for sleep(1).
delay() { local ms=$(( $1 + RANDOM % ($2 - $1 + 1) )); printf '%d.%03d' $((ms / 1000)) $((ms % 1000)); }

# Runs "$@" with stdout to $OUT and stderr to $ERR, SIGKILLs it after $DELAY s; sets STATUS and KILLED.
run_and_kill() {
    "$@" >"$OUT" 2>"$ERR" </dev/null &
    local pid=$!
    sleep "$DELAY"
    KILLED=0
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null && KILLED=1; fi
    wait "$pid" 2>/dev/null
    STATUS=$?
    # Killed before it could exit by itself: the shell reports 128 + SIGKILL.
    if [ "$KILLED" = 1 ] && [ "$STATUS" != 137 ]; then KILLED=0; fi
}

# Appends the complete (newline-terminated) lines of $OUT to $1: a line cut by the kill was never whole.
keep_complete_lines() {
    if [ -s "$OUT" ] && [ "$(tail -c1 "$OUT" | od -An -c | tr -d ' ')" != '\n' ]; then
        sed '$d' "$OUT" >>"$1"
    else
        cat "$OUT" >>"$1"
    fi
}

failed() {
    echo "killloop: FAILED in the $1 workload, iteration $2: $3" >&2
    echo "killloop: kept $WORK for inspection (child stdout: $OUT, stderr: $ERR)" >&2
    exit 1
}

SUMMARY=()

kv_loop() {
    local bank="$WORK/bank" acks="$WORK/bank-acks.txt" kills=0 checked=0
    : >"$acks"
    for ((i = 1; i <= ITERATIONS; i++)); do
        OUT="$WORK/kv-run.out" ERR="$WORK/kv-run.err" DELAY=$(delay 100 1500)
        run_and_kill "$TXLOG" workload run "$bank" --clients 8 --seconds 30 --accounts 50
        [ "$KILLED" = 1 ] || [ "$STATUS" = 0 ] || failed kv "$i" "workload run exited with status $STATUS: $(head -c 400 "$ERR")"
        kills=$((kills + KILLED))
        keep_complete_lines "$acks"
        # A run killed before it created the bank directory (a slow start under load) acknowledged nothing,
        # and `workload check` refuses a directory that does not exist: there is nothing to check yet.
        if [ ! -d "$bank" ] && [ ! -s "$acks" ]; then
            [ "${VERBOSE:-0}" = 1 ] && echo "kv  $i: killed after ${DELAY}s before the bank existed, nothing to check"
            continue
        fi
        local check
        check=$("$TXLOG" workload check "$bank" --acks "$acks" --json 2>"$WORK/kv-check.err") \
            || failed kv "$i" "workload check: $(tr -d '\n' <<<"$check" | head -c 600) $(head -c 400 "$WORK/kv-check.err")"
        checked=$(sed -n 's/.*"acknowledged" *: *\([0-9]*\).*/\1/p' <<<"$check" | head -n1)
        [ "${VERBOSE:-0}" = 1 ] && echo "kv  $i: killed after ${DELAY}s ($KILLED), $(wc -l <"$OUT") new acks, $checked acknowledged transfers checked"
    done
    SUMMARY+=("kv   (txlog workload): $ITERATIONS iterations, $kills killed by SIGKILL, $((ITERATIONS - kills)) exited first, $checked acknowledged transfers verified after the last kill (cumulative), failures 0")
}

raw_loop() {
    local kills=0 records=0 intact=0 acked=0 series=0 log acks
    local sizes=(20 100 3000 70000) flushes=(1 4) codecs=(lz4 none zlib:1)
    for ((i = 1; i <= ITERATIONS; i++)); do
        if (( (i - 1) % 10 == 0 )); then
            log="$WORK/raw-$series" acks="$WORK/raw-$series-acks.txt"
            RAW_SIZE=${sizes[RANDOM % 4]} RAW_FLUSH=${flushes[RANDOM % 2]} RAW_CODEC=${codecs[RANDOM % 3]}
            "$TXLOG" create "$log" --container-size 512K --containers 4 --block-size 4K --codec "$RAW_CODEC" >/dev/null \
                || failed raw "$i" "txlog create failed"
            : >"$acks"
            series=$((series + 1))
        fi
        OUT="$WORK/raw-run.out" ERR="$WORK/raw-run.err" DELAY=$(delay 50 800)
        # --seconds bounds a run this script no longer kills (an interrupted loop: background jobs of a
        # script ignore SIGINT), which would otherwise append and print acknowledgements for ever.
        run_and_kill "$TXLOG" stress run "$log" --writers 8 --record-size "$RAW_SIZE" --flush-every "$RAW_FLUSH" --seconds 30
        [ "$KILLED" = 1 ] || failed raw "$i" "stress run was not killed (status $STATUS): $(head -c 400 "$ERR")"
        kills=$((kills + 1))
        keep_complete_lines "$acks"
        local check
        check=$("$TXLOG" stress check "$log" --acks "$acks" 2>&1) || failed raw "$i" "stress check: $(head -c 800 <<<"$check")"
        # "ok: P acknowledged records present of A (base B), R records intact"
        local present all read
        present=$(sed -n 's/^ok: \([0-9]*\) acknowledged records present.*/\1/p' <<<"$check")
        read=$(sed -n 's/.*, \([0-9]*\) records intact.*/\1/p' <<<"$check")
        records=$((records + ${present:-0}))
        intact=$((intact + ${read:-0}))
        if (( i % 10 == 0 || i == ITERATIONS )); then
            all=$(sed -n 's/.* present of \([0-9]*\) .*/\1/p' <<<"$check")
            acked=$((acked + ${all:-0}))
        fi
        [ "${VERBOSE:-0}" = 1 ] && echo "raw $i: series $series ($RAW_CODEC, ${RAW_SIZE} B, flush every $RAW_FLUSH), killed after ${DELAY}s, $check"
    done
    SUMMARY+=("raw  (txlog stress):   $ITERATIONS iterations, $kills killed by SIGKILL, $series logs, $acked records acknowledged; the checks verified $records acknowledged records still above the base and read $intact records intact (summed over the checks), failures 0")
}

# The number after "$1": in the JSON $2.
json_field() { sed -n "s/.*\"$1\" *: *\([0-9]*\).*/\1/p" <<<"$2" | head -n1; }

churn_loop() {
    local kills=0 acked=0 txs=0 present=0 absent=0 series=0 dir acks
    for ((i = 1; i <= ITERATIONS; i++)); do
        if (( (i - 1) % 25 == 0 )); then
            dir="$WORK/churn-$series" acks="$WORK/churn-$series-acks.txt"
            : >"$acks"
            series=$((series + 1))
        fi
        OUT="$WORK/churn-run.out" ERR="$WORK/churn-run.err" DELAY=$(delay 100 1500)
        # Clients and seed count when a workload is created; the checkpoint interval varies per run (100 s:
        # none within the run, the checkpoints are left to the tail-pinned handlers the full log calls).
        local every=(0.05 0.25 100) clients=(2 4 8)
        run_and_kill "$TXLOG" workload churn "$dir" --clients "${clients[RANDOM % 3]}" --seconds 30 --seed "$RANDOM" \
            --checkpoint-every "${every[RANDOM % 3]}"
        [ "$KILLED" = 1 ] || [ "$STATUS" = 0 ] || failed churn "$i" "workload churn exited with status $STATUS: $(head -c 400 "$ERR")"
        kills=$((kills + KILLED))
        keep_complete_lines "$acks"
        if [ ! -d "$dir" ] && [ ! -s "$acks" ]; then
            [ "${VERBOSE:-0}" = 1 ] && echo "churn $i: killed after ${DELAY}s before the workload existed, nothing to check"
            continue
        fi
        local check
        check=$("$TXLOG" workload churn-check "$dir" --acks "$acks" --json 2>"$WORK/churn-check.err") \
            || failed churn "$i" "workload churn-check: $(tr -d '\n' <<<"$check" | head -c 900) $(head -c 400 "$WORK/churn-check.err")"
        local t p a
        t=$(json_field transactions "$check") p=$(json_field present "$check") a=$(json_field absent "$check")
        acked=$((acked + $(wc -l <"$OUT")))
        txs=$((txs + ${t:-0})) present=$((present + ${p:-0})) absent=$((absent + ${a:-0}))
        [ "${VERBOSE:-0}" = 1 ] && echo "churn $i: killed after ${DELAY}s ($KILLED), $(wc -l <"$OUT") new acks, ${t:-0} transactions matched"
    done
    SUMMARY+=("churn (txlog workload churn): $ITERATIONS iterations, $kills killed by SIGKILL, $series workloads, $acked transactions acknowledged; the checks replayed and matched $txs transactions, $present keys present and $absent absent (summed over the checks), failures 0")
}

START=$SECONDS
case "$WHICH" in
    kv) kv_loop ;;
    raw) raw_loop ;;
    churn) churn_loop ;;
    both) kv_loop; raw_loop ;;
    all) kv_loop; churn_loop; raw_loop ;;
esac
echo "killloop: passed in $((SECONDS - START)) s (seed $SEED)"
for line in "${SUMMARY[@]}"; do echo "  $line"; done
[ "${KEEP:-0}" = 1 ] || [ -n "${KILLLOOP_DIR:-}" ] || rm -rf "$WORK"
