#!/usr/bin/env bash
# The daemon's cost on a virtual X screen: CPU (average and peak over 5 s windows) and memory
# over a static screen and over a screen where a line is typed every few seconds, OCR time per
# frame, and storage per hour; first in a terminal (xterm: read by OCR), then in a GTK text view
# that exposes its text through accessibility (AT-SPI, on the run's own session bus), whose
# stored text is compared with the window's own (character error rate). Baseline in the same
# run: the tesseract command on the same window, with OpenMP's default threads and with one.
#
# Usage: bench/daemon.sh [SECONDS per scenario, default 600] [INTERVAL, default 5]
#        SCENARIOS="typing gtk-typing" bench/daemon.sh 120     (some scenarios only)
# Needs: xvfb openbox xterm xdotool dbus at-spi2-core python3-gi (scripts/test.sh installs
# them) and a release build.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-600}
interval=${2:-5}
cargo build --release --locked >&2
engram=${CARGO_TARGET_DIR:-$PWD/target}/release/engram
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

exec 3> "$work/display"
Xvfb -displayfd 3 -s 0 -screen 0 1920x1080x24 -nolisten tcp 2>/dev/null &
pids+=($!)
for _ in $(seq 50); do [ -s "$work/display" ] && break; sleep 0.1; done
export DISPLAY=":$(head -1 "$work/display")"
openbox >/dev/null 2>&1 &
pids+=($!)
sleep 1
# The run's own session bus: the accessibility bus starts on it when the GTK window asks.
export XDG_RUNTIME_DIR="$work/run"
mkdir -m 700 "$XDG_RUNTIME_DIR"
dbus-daemon --session --fork --print-address=4 --print-pid=5 --address="unix:path=$XDG_RUNTIME_DIR/bus" 4> "$work/bus" 5> "$work/bus.pid"
export DBUS_SESSION_BUS_ADDRESS="$(head -1 "$work/bus")"
pids+=("$(cat "$work/bus.pid")")
# The same text in both windows: 30 lines of the sample's Markdown, English and Chinese.
# (head closes the pipe early: not a failure.)
find assets/sample -name "*.md" | sort | xargs cat | head -30 > "$work/draft.txt" || true
# A busy terminal: the sample's text on screen, then `cat` echoing what is typed.
xterm -T "Notes - bench" -fa "Noto Sans Mono CJK SC" -fs 12 -geometry 140x45+0+0 \
    -e sh -c "cat '$work/draft.txt'; exec cat >/dev/null" &
pids+=($!)
# A GTK text view with the same text (Debian's python3, which python3-gi belongs to).
/usr/bin/python3 tests/util/gtk_window.py engram-bench "Draft - bench" "$work/draft.txt" edit 2>/dev/null &
pids+=($!)
xdotool search --sync --name '^Draft - bench$' >/dev/null

ticks=$(getconf CLK_TCK)
cpu_of() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# scenario NAME TYPING(0/1): prints one markdown row.
scenario() {
    local name=$1 typing=$2 window=$3
    xdotool search --sync --name "^$window\$" windowactivate --sync >/dev/null
    export ENGRAM_DATA_DIR="$work/store-$name" ENGRAM_PASSPHRASE=bench
    # Measure capture itself: no pause after idle minutes (the static screen has no input).
    printf '[screen]\nidle_minutes = 0\n' > "$work/config.toml"
    export XDG_CONFIG_HOME="$work/xdg"; mkdir -p "$XDG_CONFIG_HOME/engram"; cp "$work/config.toml" "$XDG_CONFIG_HOME/engram/config.toml"
    $engram init >/dev/null
    $engram daemon --interval "$interval" 2> "$work/$name.log" &
    local pid=$!
    for _ in $(seq 600); do grep -q '"ready": true' "$ENGRAM_DATA_DIR/daemon.json" 2>/dev/null && break; sleep 0.1; done
    # Let start-up (model loading, the first frame) pass before measuring.
    sleep $((interval + 2))
    local size0 cpu0 t0 peak=0 last_cpu last_t
    size0=$(du -sb "$ENGRAM_DATA_DIR" | cut -f1)
    cpu0=$(cpu_of $pid); t0=$(date +%s.%N); last_cpu=$cpu0; last_t=$t0
    local end=$(( $(date +%s) + secs )) n=0
    while [ "$(date +%s)" -lt "$end" ]; do
        if [ "$typing" = 1 ] && [ $((n % 3)) -eq 0 ]; then
            xdotool type --delay 30 "line $n: met Dana about the quarterly budget, invoice $((RANDOM)) due friday"
            xdotool key Return
        else
            sleep 1
        fi
        n=$((n + 1))
        if [ $((n % 5)) -eq 0 ]; then
            local c t
            c=$(cpu_of $pid); t=$(date +%s.%N)
            peak=$(awk -v p="$peak" -v c="$c" -v lc="$last_cpu" -v t="$t" -v lt="$last_t" -v k="$ticks" \
                'BEGIN { v = 100 * (c - lc) / k / (t - lt); print (v > p ? v : p) }')
            last_cpu=$c; last_t=$t
        fi
    done
    local cpu1 t1 hwm size1
    cpu1=$(cpu_of $pid); t1=$(date +%s.%N)
    hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$pid/status")
    size1=$(du -sb "$ENGRAM_DATA_DIR" | cut -f1)
    kill -TERM $pid; wait $pid || true
    local frames ocr shots
    shots=$($engram status --json | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["frame_bytes"])')
    $engram status --json | python3 -c '
import json, sys
d = json.load(sys.stdin)
print("  %s: store after %.1f MB database (screenshots %.1f MB in %d frames), %.1f MB index"
      % (sys.argv[1], d["database_bytes"] / 1e6, d["frame_bytes"] / 1e6, d["frames"], d["index_bytes"] / 1e6))' "$name" >> "$work/breakdown"
    frames=$(python3 -c "import json; print(json.load(open('$ENGRAM_DATA_DIR/daemon.json'))['frames_stored'])")
    # OCR time over every frame read, the ones that replaced their predecessor included.
    ocr=$(python3 -c "import json; d=json.load(open('$ENGRAM_DATA_DIR/daemon.json')); print(round(d['ocr_ms_total']/max(d['frames_stored']+d['frames_coalesced'],1)))")
    coalesced=$(python3 -c "import json; print(json.load(open('$ENGRAM_DATA_DIR/daemon.json'))['frames_coalesced'])")
    awk -v name="$name" -v c0="$cpu0" -v c1="$cpu1" -v t0="$t0" -v t1="$t1" -v k="$ticks" -v peak="$peak" \
        -v hwm="$hwm" -v s0="$size0" -v s1="$size1" -v frames="$frames" -v ocr="$ocr" -v shots="$shots" -v co="$coalesced" \
        'BEGIN { d = t1 - t0; printf "| %s | %.0f s | %.2f %% | %.1f %% | %.0f MB | %d (+%d replaced) | %d ms | %.1f MB | %.0f KiB |\n",
                 name, d, 100 * (c1 - c0) / k / d, peak, hwm / 1024, frames, co, ocr, (s1 - s0) / d * 3600 / 1e6, shots / (frames > 0 ? frames : 1) / 1024 }'
}

echo "| screen | measured | CPU avg (one core) | CPU peak (5 s) | peak RSS | frames kept (+ replaced by a later one) | OCR per frame read | storage per hour | sealed screenshot per frame kept |"
echo "|---|---|---|---|---|---|---|---|---|"
for s in ${SCENARIOS:-static typing gtk-static gtk-typing}; do
    window="Notes - bench"
    case $s in gtk-*) window="Draft - bench" ;; esac
    scenario "$s" "$(case $s in *typing) echo 1 ;; *) echo 0 ;; esac)" "$window"
done

cat "$work/breakdown"

# Character error rate of the accessible window's stored text against the window's own.
if [ -d "$work/store-gtk-static" ]; then
    export ENGRAM_DATA_DIR="$work/store-gtk-static" ENGRAM_PASSPHRASE=bench
    id=$($engram search --json --kind screen --limit 1 "$(awk 'NF { print $NF; exit }' "$work/draft.txt")" | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["id"])')
    $engram show --json "$id" | python3 -c '
import json, sys
stored = " ".join(json.load(sys.stdin)["text"].split())
own = " ".join(open(sys.argv[1], encoding="utf-8").read().split())
prev = list(range(len(stored) + 1))
for i, a in enumerate(own, 1):
    cur = [i]
    for j, b in enumerate(stored, 1):
        cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a != b)))
    prev = cur
print("accessible window (gtk-static): character error rate %.2f %% over %d characters" % (100 * prev[-1] / max(len(own), 1), len(own)))' "$work/draft.txt"
fi

# Baseline: the tesseract command on the same window, OpenMP default vs one thread.
xwd_png="$work/window.png"
"$engram" --version >/dev/null
import_ok=0
if command -v xwd >/dev/null && command -v convert >/dev/null; then import_ok=1; fi
if [ $import_ok = 1 ]; then
    xwd -root -silent | convert xwd:- "$xwd_png"
else
    # No ImageMagick: use the frame the daemon stored (decrypted by `engram show --image`).
    export ENGRAM_DATA_DIR="$work/store-typing" ENGRAM_PASSPHRASE=bench
    id=$($engram search --json --kind screen --limit 1 budget | python3 -c 'import json,sys; print(json.load(sys.stdin)["results"][0]["id"])')
    $engram show "$id" --image "$xwd_png" >/dev/null
fi
for threads in default 1; do
    start=$(date +%s.%N)
    for _ in 1 2 3; do
        if [ $threads = default ]; then env -u OMP_THREAD_LIMIT tesseract "$xwd_png" - -l eng+chi_sim --psm 4 >/dev/null 2>&1
        else OMP_THREAD_LIMIT=1 tesseract "$xwd_png" - -l eng+chi_sim --psm 4 >/dev/null 2>&1; fi
    done
    end=$(date +%s.%N)
    awk -v s="$start" -v e="$end" -v t="$threads" 'BEGIN { printf "tesseract command, OpenMP threads %s: %.0f ms a frame (with start-up)\n", t, (e - s) / 3 * 1000 }'
done
