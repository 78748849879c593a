#!/usr/bin/env bash
# Captions: the time and peak memory of `engram caption` over the bundled sample (each caption
# printed, to read them), then whether indexing captions with their documents' titles changes
# retrieval: `engram eval` hybrid with and without `--captions`, in the same run.
# Usage: bench/captions.sh [SET...]   (sets under assets/eval; default xquad_en xquad_zh;
#        cranfield's 1,400 documents take about an hour to caption on 2 cores; `-` for none)
#        ENGRAM_BIN=target/release/engram bench/captions.sh   (skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
sets=("$@")
if [ ${#sets[@]} -eq 0 ]; then sets=(xquad_en xquad_zh); fi
. bench/sample-store.sh
start=$(date +%s.%N)
/usr/bin/time -f '%M' -o "$work/rss" $engram caption --json > "$work/done"
end=$(date +%s.%N)
n=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["captioned"])' "$work/done")
$engram timeline --json --limit 1000 | python3 -c '
import json, sys
for m in json.load(sys.stdin)["memories"]:
    print("%s\t%s" % (m["source"].rsplit("/", 1)[-1], m["caption"] or "(none)"))'
python3 -c 'import sys; n, s, e, rss = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4]); print("sample: %d memories captioned in %.1f s, %.2f s each (model load included); peak RSS %d MiB" % (n, e - s, (e - s) / max(n, 1), rss // 1024))' "$n" "$start" "$end" "$(cat "$work/rss")"
for set in "${sets[@]}"; do
    if [ "$set" = - ]; then continue; fi
    dir=assets/eval/$set
    echo "$set plain:    $($engram eval "$dir" --mode hybrid)"
    echo "$set captions: $($engram eval "$dir" --mode hybrid --captions)"
done
