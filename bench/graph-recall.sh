#!/usr/bin/env bash
# The vector graph (HNSW) against the exact scan, on real embeddings of real text: the
# documentation Debian installs (/usr/share/doc: read-me files, change logs, licences), up to
# FILES files of up to 20 KB each, added to a throwaway store and embedded with the default
# model; then bench/graph.rs compares the two on it. Usage: bench/graph-recall.sh [FILES]
set -euo pipefail
cd "$(dirname "$0")/.."
files=${1:-1500}
source bench/sample-store.sh
corpus="$work/doc"
mkdir -p "$corpus"
n=0
while IFS= read -r f && [ "$n" -lt "$files" ]; do
    out="$corpus/$n.txt"
    case "$f" in
        *.gz) zcat -f "$f" 2>/dev/null | head -c 20000 >"$out" || true ;;
        *) head -c 20000 "$f" >"$out" ;;
    esac
    n=$((n + 1))
done < <(find /usr/share/doc -type f \( -name '*.gz' -o -name 'README*' -o -name 'copyright' \) | LC_ALL=C sort)
$engram add "$corpus" >/dev/null
echo "| vectors | model | graph build | recall@10 | graph p50 / p99 | scan p50 |"
echo "|---|---|---|---|---|---|"
cargo bench --locked --bench graph 2>/dev/null | grep '^|'
