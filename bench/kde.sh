#!/usr/bin/env bash
# KDE capture on a headless KWin (`kwin_wayland --virtual`, its own session bus, as the tests run
# it): how long from a GTK window with new text being started to that text being found by
# search, the daemon grabbing every second, and what the daemon costs meanwhile. Each trial
# closes the last window and starts a GTK window (tests/util/gtk_window.py) with a fresh word;
# KWin gives it focus; `engram search` is polled every 0.1 s. The time includes GTK's start-up,
# KWin's window list telling engram of it, the wait for the next grab (up to 1 s) and KWin
# drawing the window into a pipe. Then the last window is left alone for 30 s, for the cost of
# grabbing a still window every second, KWin's included (against 30 s with capture paused).
#
# Usage: bench/kde.sh [TRIALS, default 10, at most 20]
# Needs: kwin-wayland dbus python3-gi (scripts/test.sh installs them) and a release build.
# KWin runs as the user running this (root too), so it can see which program the daemon is.
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-10}
source bench/wayland-session.sh
bus="unix:path=$run/bus"
export XDG_RUNTIME_DIR=$run XDG_DATA_HOME=$run/data WAYLAND_DISPLAY=wayland-0 DBUS_SESSION_BUS_ADDRESS=$bus
# In the background, and remembered to be stopped: the program itself, not a subshell.
session_bg() {
    env -i PATH="$PATH" HOME="$run" XDG_RUNTIME_DIR="$run" XDG_DATA_HOME="$XDG_DATA_HOME" LANG=C.UTF-8 \
        XDG_CONFIG_HOME="$run/config" XDG_CACHE_HOME="$run/cache" \
        DBUS_SESSION_BUS_ADDRESS="$bus" WAYLAND_DISPLAY=wayland-0 "$@" >/dev/null 2>&1 &
    pids+=($!)
}
session_bg dbus-daemon --session --nofork --address="$bus"
for _ in $(seq 100); do [ -S "$run/bus" ] && break; sleep 0.1; done
# Debian's kwin_wayland has a file capability a container may refuse: a plain copy needs none.
cp /usr/bin/kwin_wayland "$work/kwin_wayland"
session_bg "$work/kwin_wayland" --virtual --width 1920 --height 1080 --socket wayland-0
kwin=${pids[-1]}
for _ in $(seq 300); do [ -S "$run/wayland-0" ] && break; sleep 0.1; done
sleep 2

screen_settings=$'kwin_permission = true\n' start_daemon
ticks=$(getconf CLK_TCK)
cpu0=$(awk '{ print $14 + $15 }' "/proc/$daemon/stat"); t0=$(date +%s.%N)

gtk_trials "$trials"

cpu1=$(awk '{ print $14 + $15 }' "/proc/$daemon/stat"); t1=$(date +%s.%N)
# Then the last window left alone for 30 s: KWin draws it for every grab, and engram finds the
# picture unchanged.
kwin1=$(awk '{ print $14 + $15 }' "/proc/$kwin/stat")
sleep 30
cpu2=$(awk '{ print $14 + $15 }' "/proc/$daemon/stat"); t2=$(date +%s.%N)
kwin2=$(awk '{ print $14 + $15 }' "/proc/$kwin/stat")
# KWin's own cost with capture paused, the baseline for the figure above.
$engram pause >/dev/null
sleep 30
kwin3=$(awk '{ print $14 + $15 }' "/proc/$kwin/stat"); t3=$(date +%s.%N)
hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$daemon/status")
echo "backend: $($engram status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["daemon"]["backend"])')"
sort -n "$work/latency" | awk -v c0="$cpu0" -v c1="$cpu1" -v c2="$cpu2" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v k="$ticks" -v hwm="$hwm" -v w1="$kwin1" -v w2="$kwin2" -v w3="$kwin3" -v t3="$t3" \
    '{ v[NR] = $1 } END { printf "KDE (KWin), %d trials: window started to searchable p50 %.2f s, max %.2f s; daemon CPU %.1f %% of a core during the trials, %.1f %% with one still window (KWin meanwhile %.1f %%, %.1f %% with capture paused); peak RSS %.0f MB\n",
        NR, v[int((NR + 1) / 2)], v[NR], 100 * (c1 - c0) / k / (t1 - t0), 100 * (c2 - c1) / k / (t2 - t1), 100 * (w2 - w1) / k / (t2 - t1), 100 * (w3 - w2) / k / (t3 - t2), hwm / 1024 }'
