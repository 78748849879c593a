# Sourced by bench/sway.sh, bench/gnome.sh and bench/kde.sh: a release build, a work directory removed at exit
# with every background program stopped, and a session directory ($run) owned by the
# unprivileged user engram-wl (made if missing) when run as root, as the tests do; `as_user`
# runs a command as that user.
cargo build --release --locked >&2
engram=${CARGO_TARGET_DIR:-$PWD/target}/release/engram
work=$(mktemp -d)
chmod 755 "$work"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; rm -rf "$work"; }
trap cleanup EXIT

run=$work/run
mkdir -m 700 "$run"
as_user=()
if [ "$(id -u)" -eq 0 ]; then
    id -u engram-wl >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin engram-wl
    chown engram-wl: "$run"
    as_user=(setpriv --reuid "$(id -u engram-wl)" --regid "$(id -g engram-wl)" --clear-groups)
fi

# The daemon under test, on a fresh store, ready: its pid in $daemon. $screen_settings adds
# lines to the config's [screen] table.
start_daemon() {
    export ENGRAM_DATA_DIR="$work/store" ENGRAM_PASSPHRASE=bench XDG_CONFIG_HOME="$work/xdg"
    mkdir -p "$XDG_CONFIG_HOME/engram"
    printf '[screen]\nidle_minutes = 0\n%s' "${screen_settings:-}" > "$XDG_CONFIG_HOME/engram/config.toml"
    $engram init >/dev/null
    $engram daemon --interval 1 2> "$work/daemon.log" &
    daemon=$!
    pids+=($daemon)
    for _ in $(seq 600); do grep -q '"ready": true' "$ENGRAM_DATA_DIR/daemon.json" 2>/dev/null && break; sleep 0.1; done
    sleep 2
}

# N trials: each closes the last window and starts a GTK window (tests/util/gtk_window.py) with a
# fresh word through the caller's `session_bg`, then polls `engram search` every 0.1 s; the
# seconds from start to found, one a line, go to $work/latency.
gtk_trials() {
    local words=(quokka numbat tapir okapi dugong pangolin axolotl kinkajou saola fossa margay
        tenrec quoll bilby potoroo wallaroo gerenuk serval caracal binturong)
    local i word shown found last=""
    : > "$work/latency"
    for i in $(seq "$1"); do
        word="${words[$(( (i - 1) % ${#words[@]} ))]}"
        [ -n "$last" ] && kill "$last" 2>/dev/null || true
        echo "meeting notes: the $word report is due friday" > "$run/text-$i.txt"
        chmod 644 "$run/text-$i.txt"
        shown=$(date +%s.%N)
        session_bg GDK_BACKEND=wayland /usr/bin/python3 tests/util/gtk_window.py bench-notes "Trial $i" "$run/text-$i.txt"
        last=${pids[-1]}
        until $engram search --json --mode keyword --kind screen "$word" | grep -q '"id"'; do sleep 0.1; done
        found=$(date +%s.%N)
        awk -v a="$shown" -v b="$found" 'BEGIN { printf "%.3f\n", b - a }' >> "$work/latency"
    done
}
