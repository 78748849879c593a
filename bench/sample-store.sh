# Sourced by the bench scripts: builds the release binary unless ENGRAM_BIN names one, and
# makes a throwaway sealed store of the bundled sample. Sets $engram and $work (removed on exit).
if [ -z "${ENGRAM_BIN:-}" ]; then cargo build --release --locked >&2; fi
engram=${ENGRAM_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release/engram}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export ENGRAM_DATA_DIR="$work/store" ENGRAM_PASSPHRASE=bench XDG_CONFIG_HOME="$work/xdg"
$engram init >/dev/null
$engram add assets/sample >/dev/null
