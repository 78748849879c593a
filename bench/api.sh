#!/usr/bin/env bash
# Search-API latency and throughput under load, alone and with the daemon indexing at the same
# time, and page load to first result. Baseline in the same run: one client with no daemon.
# Store: assets/sample plus the Cranfield abstracts as 1400 note files; queries: Cranfield's.
# Usage: bench/api.sh [SECONDS, default 30] [CLIENTS, default 20]
#        API_DOCS=50 ENGRAM_BIN=target/debug/engram bench/api.sh 5 2   (a quick check of the script)
# Load: wrk (Debian package wrk: one thread, an event loop, so the load costs the server's two
# cores little), each of CLIENTS connections sending one query after another (bench/search.lua).
# Needs: a release build, wrk, python3, node with tests/web/node_modules (scripts/test.sh installs it).
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
clients=${2:-20}
docs=${API_DOCS:-1400}
if [ -z "${ENGRAM_BIN:-}" ]; then cargo build --release --locked >&2; fi
engram=${ENGRAM_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/engram}
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT
export ENGRAM_DATA_DIR="$work/store" ENGRAM_PASSPHRASE=bench XDG_CONFIG_HOME="$work/xdg"
mkdir -p "$work/notes" "$work/incoming"
python3 - "$work" "$docs" <<'PY'
import json, sys
work, n = sys.argv[1], int(sys.argv[2])
docs = [json.loads(l) for l in open("assets/eval/cranfield/corpus.jsonl", encoding="utf-8")]
for d in docs[:n]:
    open(f"{work}/notes/{d['_id']}.txt", "w").write((d.get("title", "") + "\n\n" + d["text"]).strip())
with open(f"{work}/queries.txt", "w") as q:
    for l in open("assets/eval/cranfield/queries.jsonl", encoding="utf-8"):
        q.write(json.loads(l)["text"].replace("\n", " ") + "\n")
PY
$engram init >/dev/null
$engram add assets/sample "$work/notes" >/dev/null

serve() {
    $engram serve --port 0 > "$work/url" 2>/dev/null &
    server=$!
    pids+=($server)
    for _ in $(seq 300); do [ -s "$work/url" ] && break; sleep 0.1; done
    url=$(head -1 "$work/url")
    port=${url#http://127.0.0.1:}; port=${port%%/*}
    token=${url##*token=}
}
serve
echo "| load | requests | p50 | p99 | max | requests/s | errors | server CPU |"
echo "|---|---|---|---|---|---|---|---|"
cpu() { awk '{ print $14 + $15 }' "/proc/$server/stat"; }
# A row of the table: LABEL CLIENTS, with the server's CPU time over the run (100 % = a core).
row() {
    local c0 t0 out c1 t1
    c0=$(cpu); t0=$(date +%s.%N)
    out=$(QUERIES="$work/queries.txt" TOKEN="$token" wrk -t 1 -c "$2" -d "${secs}s" --timeout 120s -s bench/search.lua "http://127.0.0.1:$port/" | tail -1)
    c1=$(cpu); t1=$(date +%s.%N)
    python3 -c '
import json, sys
d = json.loads(sys.argv[2])
cpu = 100 * float(sys.argv[3]) / float(sys.argv[4]) / float(sys.argv[5])
print("| %s | %s | %s ms | %s ms | %s ms | %s | %s | %.0f %% |" % (sys.argv[1], d["requests"], d["p50_ms"], d["p99_ms"], d["max_ms"], d["per_second"], d["errors"], cpu))' \
        "$1" "$out" "$((c1 - c0))" "$(getconf CLK_TCK)" "$(echo "$t1 - $t0" | bc)"
}
row "1 client, no daemon (baseline)" 1
row "$clients clients, no daemon" "$clients"

# The daemon indexes a new note every half second while the clients search.
$engram daemon --watch "$work/incoming" 2>/dev/null &
pids+=($!)
for _ in $(seq 600); do grep -q '"ready": true' "$ENGRAM_DATA_DIR/daemon.json" 2>/dev/null && break; sleep 0.1; done
( i=0; while true; do sed -n "$((i % 225 + 1))p" "$work/queries.txt" > "$work/incoming/new-$i.txt"; i=$((i + 1)); sleep 0.5; done ) &
pids+=($!)
row "$clients clients, daemon indexing" "$clients"
indexed=$(python3 -c "import json; print(json.load(open('$ENGRAM_DATA_DIR/daemon.json'))['files_indexed'])")
echo
echo "files the daemon indexed during the loaded run: $indexed"
if [ -d tests/web/node_modules/playwright-core ]; then
    echo "page load to first result (headless Chromium, 5 loads): $(cd tests/web && node first-result.mjs "$url" "boundary layer")"
fi
