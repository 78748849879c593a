#!/usr/bin/env bash
# GNOME capture on a headless mutter (its own session bus, PipeWire and WirePlumber, as the
# tests run it): how long from a GTK window with new text being started to that text being
# found by search, the daemon grabbing every second, and what the daemon costs meanwhile. Each
# trial closes the last window and starts a GTK window (tests/util/gtk_window.py) with a fresh
# word; mutter gives it focus; `engram search` is polled every 0.1 s. The time includes GTK's
# start-up, the new window cast over PipeWire and the wait for the next grab (up to 1 s).
#
# Usage: bench/gnome.sh [TRIALS, default 10, at most 20]
# Needs: mutter pipewire wireplumber dbus python3-gi (scripts/test.sh installs them) and a
# release build. As root, the session runs as the unprivileged user engram-wl (made if missing).
set -euo pipefail
cd "$(dirname "$0")/.."
trials=${1:-10}
source bench/wayland-session.sh
bus="unix:path=$run/bus"
# In the background, and remembered to be stopped: the program itself, not a subshell.
session_bg() {
    "${as_user[@]}" env -i PATH="$PATH" HOME="$run" XDG_RUNTIME_DIR="$run" LANG=C.UTF-8 \
        DBUS_SESSION_BUS_ADDRESS="$bus" WAYLAND_DISPLAY=wayland-0 "$@" >/dev/null 2>&1 &
    pids+=($!)
}
# The session bus lets root in too, so a daemon run as root can talk to mutter.
printf '<busconfig><include>/usr/share/dbus-1/session.conf</include><policy context="default"><allow user="root"/></policy></busconfig>\n' > "$work/bus.conf"
session_bg dbus-daemon --config-file="$work/bus.conf" --nofork --address="$bus"
for _ in $(seq 100); do [ -S "$run/bus" ] && break; sleep 0.1; done
session_bg pipewire
for _ in $(seq 100); do [ -S "$run/pipewire-0" ] && break; sleep 0.1; done
session_bg wireplumber
session_bg mutter --headless --virtual-monitor 1920x1080 --wayland --no-x11
for _ in $(seq 300); do [ -S "$run/wayland-0" ] && break; sleep 0.1; done
sleep 2
# A headless seat has no keyboard, so no window would ever be active: mutter's remote-desktop
# session gives it one.
session_bg /usr/bin/python3 tests/util/gnome_keyboard.py
sleep 2
export XDG_RUNTIME_DIR=$run WAYLAND_DISPLAY=wayland-0 DBUS_SESSION_BUS_ADDRESS=$bus

start_daemon
ticks=$(getconf CLK_TCK)
cpu0=$(awk '{ print $14 + $15 }' "/proc/$daemon/stat"); t0=$(date +%s.%N)

gtk_trials "$trials"

cpu1=$(awk '{ print $14 + $15 }' "/proc/$daemon/stat"); t1=$(date +%s.%N)
hwm=$(awk '/VmHWM/ { print $2 }' "/proc/$daemon/status")
echo "backend: $($engram status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["daemon"]["backend"])')"
sort -n "$work/latency" | awk -v c0="$cpu0" -v c1="$cpu1" -v t0="$t0" -v t1="$t1" -v k="$ticks" -v hwm="$hwm" \
    '{ v[NR] = $1 } END { printf "GNOME (mutter), %d trials: window started to searchable p50 %.2f s, max %.2f s; daemon CPU %.1f %% of a core, peak RSS %.0f MB\n",
        NR, v[int((NR + 1) / 2)], v[NR], 100 * (c1 - c0) / k / (t1 - t0), hwm / 1024 }'
