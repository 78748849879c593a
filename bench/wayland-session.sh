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
