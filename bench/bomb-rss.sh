#!/usr/bin/env bash
# The daemon's peak memory (VmHWM) indexing a watched folder, without and with a PDF bomb and a
# zip bomb in it: documents are read by the engram-extract worker, so a bomb costs the worker,
# and the daemon's own peak should not move. Each run starts a fresh store and daemon (no screen
# capture), waits until every file is indexed or skipped, then reads the daemon's VmHWM and the
# worker's exit reasons from `engram status --json`.
#
# Usage: bench/bomb-rss.sh [RUNS per case, default 3]
# Needs a build: ENGRAM=path/to/engram (default: a release build made here).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-3}
if [ -z "${ENGRAM:-}" ]; then
    cargo build --release --locked --bin engram --bin engram-extract >&2
    ENGRAM=${CARGO_TARGET_DIR:-$PWD/target}/release/engram
fi
work=$(mktemp -d)
trap 'pkill -P $$ 2>/dev/null || true; rm -rf "$work"' EXIT

# The folder: the bundled sample, plus (second case) a 4 GiB PDF bomb and a 2 GiB zip bomb.
mkdir -p "$work/plain" "$work/bombs"
cp -r assets/sample/. "$work/plain/"
cp -r assets/sample/. "$work/bombs/"
python3 - "$work/bombs" <<'EOF'
import sys, zlib, zipfile, os
out = sys.argv[1]
zeros = bytes(1 << 20)

def deflated(mib):
    c = zlib.compressobj(9)
    parts = [c.compress(zeros) for _ in range(mib)]
    parts.append(c.flush())
    return b"".join(parts)

# A page whose content stream inflates to 4 GiB of zeros.
stream = deflated(4 << 10)
objs = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R >>",
        b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream"]
pdf, offsets = bytearray(b"%PDF-1.4\n"), []
for i, o in enumerate(objs, 1):
    offsets.append(len(pdf))
    pdf += b"%d 0 obj\n" % i + o + b"\nendobj\n"
xref = len(pdf)
pdf += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
pdf += b"".join(b"%010d 00000 n \n" % o for o in offsets)
pdf += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
open(os.path.join(out, "bomb.pdf"), "wb").write(pdf)

# A Word document whose body inflates to 2 GiB.
with zipfile.ZipFile(os.path.join(out, "bomb.docx"), "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
    with z.open("word/document.xml", "w", force_zip64=True) as f:
        for _ in range(2 << 10):
            f.write(zeros)
EOF

# run CASE: prints "peak_kib skipped_count" once every file is indexed or skipped.
run() {
    local case=$1 n skipped=0
    export ENGRAM_DATA_DIR="$work/store" ENGRAM_PASSPHRASE=bench XDG_CONFIG_HOME="$work/xdg"
    rm -rf "$ENGRAM_DATA_DIR"; mkdir -p "$XDG_CONFIG_HOME/engram"
    # No captions either: the captioner loads the language model once the daemon has been idle
    # a while, and a run with bombs in it lasts longer.
    printf '[screen]\ncapture = false\n[daemon]\ncaptions = false\n' > "$XDG_CONFIG_HOME/engram/config.toml"
    "$ENGRAM" init >/dev/null 2>&1
    n=$(find "$work/$case" -type f | wc -l)
    env -u DISPLAY -u WAYLAND_DISPLAY "$ENGRAM" daemon --watch "$work/$case" 2>/dev/null &
    # Done when every file is indexed or skipped, or when nothing has changed for 10 s and the
    # daemon has ended its extraction worker (it does after each batch): a file with no text
    # (the PDF bomb, if poppler gets through its zeros in time) is neither indexed nor
    # remembered as skipped.
    local pid=$! done=0 last=-1 still=0 status
    for _ in $(seq 1200); do
        sleep 0.5
        status=$("$ENGRAM" status --json 2>/dev/null) || continue
        read -r done skipped <<< "$(python3 -c 'import json,sys; d=json.loads(sys.argv[1]); s=len(d.get("skipped_files", [])); print(d["files"] + s, s)' "$status")"
        [ "$done" -ge "$n" ] && break
        if [ "$done" = "$last" ]; then still=$((still + 1)); else still=0; last=$done; fi
        [ "$still" -ge 20 ] && [ "$done" -gt 0 ] && ! pgrep -P "$pid" engram-extract >/dev/null && break
    done
    local hwm
    hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
    kill -TERM $pid; wait $pid || true
    echo "$hwm $skipped $done/$n"
}

echo "| case | run | daemon peak RSS (VmHWM) | files skipped | indexed or skipped / files |"
echo "|---|---|---|---|---|"
for case in plain bombs; do
    for r in $(seq "$runs"); do
        read -r hwm skipped done <<< "$(run $case)"
        echo "| $case | $r | $((hwm / 1024)) MiB | $skipped | $done |"
    done
done
