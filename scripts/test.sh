#!/usr/bin/env bash
# Installs what is missing, then runs every test: unit tests, end-to-end tests on the real
# binary, and the Cranfield evaluation test. Usage: scripts/test.sh [extra cargo test args]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

prepare
ensure_test_display

# One build at a time on small machines; tests share the one target directory.
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-$(nproc)}"
cargo build --tests --locked
log=$(mktemp)
trap 'rm -f "$log"' EXIT
# Every test binary runs even when one fails, so the closing line counts them all.
status=0
cargo test --locked --no-fail-fast -- "$@" 2>&1 | tee "$log" || status=$?
# The core without screen capture and Tesseract (the `capture` feature) builds and passes too;
# only the library is rebuilt, its dependencies are the ones built above.
cargo test --locked --lib --no-default-features -- "$@" 2>&1 | tee -a "$log" || status=$?
# One closing line over every test binary.
awk '/^test result:/ { p += $4; f += $6 } END { printf "all tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
