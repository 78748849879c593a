#!/usr/bin/env bash
# A new `engram serve` on a store kept by the year bench, timed to its first hybrid answer, RUNS
# times: start (unlocking the vault) until it listens, then the first search's round trip.
# Usage: ENGRAM_BENCH_KEEP=1 ENGRAM_BENCH_DAYS=125 cargo bench --bench year   # prints "kept: DIR"
#        bench/cold-start.sh DIR [RUNS, default 5]
# Needs: the release binary (cargo build --release), curl.
set -euo pipefail
cd "$(dirname "$0")/.."
kept=$1
runs=${2:-5}
engram=${ENGRAM_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/engram}
echo "| run | start to listening s | first hybrid answer s | total s |"
echo "|---|---|---|---|"
for run in $(seq "$runs"); do
    t0=$(date +%s.%N)
    coproc SERVER { ENGRAM_DATA_DIR="$kept/engram" ENGRAM_PASSPHRASE=bench exec "$engram" --config "$kept/config.toml" serve --port 0 2>/dev/null; }
    read -r url <&"${SERVER[0]}"
    t1=$(date +%s.%N)
    port=${url#http://127.0.0.1:}; port=${port%%/*}; token=${url##*token=}
    status=$(curl -s -o /dev/null -w "%{http_code}" -H "Authorization: Bearer $token" "http://127.0.0.1:$port/api/search?q=meeting%20notes&limit=10")
    t2=$(date +%s.%N)
    kill "$SERVER_PID"; wait "$SERVER_PID" 2>/dev/null || true
    [ "$status" = 200 ] || { echo "search answered $status" >&2; exit 1; }
    python3 -c 'import sys; a, b, c = map(float, sys.argv[2:]); print("| %s | %.2f | %.2f | %.2f |" % (sys.argv[1], b - a, c - b, c - a))' "$run" "$t0" "$t1" "$t2"
    sleep 1
done
