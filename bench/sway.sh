#!/usr/bin/env bash
# Wayland capture on a headless sway (wlroots, pixman renderer): how long from a window showing
# new text to that text being found by search, with the daemon grabbing every second, and what
# the daemon costs meanwhile. Each trial opens a foot terminal with a fresh word, focuses it, and
# polls `engram search` every 0.1 s; the time includes waiting for the next grab (up to 1 s).
#
# Usage: bench/sway.sh [TRIALS, default 10, at most 20]
# Needs: sway foot (scripts/test.sh installs them) and a release build. As root, sway runs as the
# unprivileged user engram-wl (made if missing), as the tests do.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-10}
source bench/wayland-session.sh
session() { "${as_user[@]}" env -i PATH="$PATH" HOME="$run" XDG_RUNTIME_DIR="$run" LANG=C.UTF-8 "$@"; }
# In the background, and remembered to be stopped: the program itself, not a subshell.
session_bg() {
    "${as_user[@]}" env -i PATH="$PATH" HOME="$run" XDG_RUNTIME_DIR="$run" LANG=C.UTF-8 "$@" >/dev/null 2>&1 &
    pids+=($!)
}
printf 'output HEADLESS-1 resolution 1920x1080\nxwayland disable\n' > "$work/sway.conf"
session_bg WLR_BACKENDS=headless WLR_RENDERER=pixman WLR_LIBINPUT_NO_DEVICES=1 sway -c "$work/sway.conf"
for _ in $(seq 100); do ls "$run"/sway-ipc.* >/dev/null 2>&1 && ls "$run"/wayland-? >/dev/null 2>&1 && break; sleep 0.1; done
export XDG_RUNTIME_DIR=$run WAYLAND_DISPLAY=$(basename "$(ls "$run"/wayland-? | head -1)") SWAYSOCK=$(ls "$run"/sway-ipc.* | head -1)
wl() { session WAYLAND_DISPLAY="$WAYLAND_DISPLAY" SWAYSOCK="$SWAYSOCK" "$@"; }

start_daemon
ticks=$(getconf CLK_TCK)
cpu0=$(awk '{ print $14 + $15 }' "/proc/$daemon/stat"); t0=$(date +%s.%N)

# Plain words, one per trial: a digit in a word is read as a letter by OCR often enough.
words=(quokka numbat tapir okapi dugong pangolin axolotl kinkajou saola fossa margay tenrec
    quoll bilby potoroo wallaroo gerenuk serval caracal binturong)
: > "$work/latency"
for i in $(seq "$trials"); do
    word="${words[$(( (i - 1) % ${#words[@]} ))]}"
    # Each trial's terminal replaces the last one, so the focused window is the new one.
    wl swaymsg '[app_id="bench-term"] kill' >/dev/null 2>&1 || true
    session_bg WAYLAND_DISPLAY="$WAYLAND_DISPLAY" SWAYSOCK="$SWAYSOCK" foot --app-id bench-term --title "Trial $i" \
        --font "Noto Sans Mono CJK SC:size=14" sh -c "echo 'meeting notes: the $word report is due friday'; exec sleep 600"
    until wl swaymsg -t get_tree | grep -q "\"Trial $i\""; do sleep 0.02; done
    shown=$(date +%s.%N)
    until $engram search --json --mode keyword --kind screen "$word" | grep -q '"id"'; do sleep 0.1; done
    found=$(date +%s.%N)
    awk -v a="$shown" -v b="$found" 'BEGIN { printf "%.3f\n", b - a }' >> "$work/latency"
done

cpu1=$(awk '{ print $14 + $15 }' "/proc/$daemon/stat"); t1=$(date +%s.%N)
hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$daemon/status")
echo "backend: $($engram status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["daemon"]["backend"])')"
sort -n "$work/latency" | awk -v c0="$cpu0" -v c1="$cpu1" -v t0="$t0" -v t1="$t1" -v k="$ticks" -v hwm="$hwm" \
    '{ v[NR] = $1 } END { printf "sway, %d trials: window shown to searchable p50 %.2f s, max %.2f s; daemon CPU %.1f %% of a core, peak RSS %.0f MB\n",
        NR, v[int((NR + 1) / 2)], v[NR], 100 * (c1 - c0) / k / (t1 - t0), hwm / 1024 }'
