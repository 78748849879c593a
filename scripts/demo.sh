#!/usr/bin/env bash
# Installs what is missing, builds engram, and runs it on the bundled sample in assets/sample:
# a new sealed store in a temporary folder, the sample indexed, a few searches and questions.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

prepare
say "building engram (release)"
cargo build --release --locked
# Cargo builds into CARGO_TARGET_DIR when it is set.
engram="${CARGO_TARGET_DIR:-target}/release/engram"

data=$(mktemp -d)
trap 'rm -rf "$data"' EXIT
export ENGRAM_DATA_DIR="$data/store"
export ENGRAM_PASSPHRASE="demo passphrase (use a prompt or --passphrase-file in real life)"

say "engram init"
$engram init
say "engram add assets/sample"
$engram add assets/sample
for q in "tenancy agreement" "when must I move out of my apartment" "brake pads" '"quarterly budget review"' "发票" "桂花"; do
    say "engram search $q"
    $engram search --limit 3 "$q"
done
for q in "What did the mechanic charge for the brakes?" "How much is the monthly rent?" "桂花糕要蒸多久？" "Who won the 1998 world cup?"; do
    say "engram ask $q"
    $engram ask "$q"
done
say "engram caption (what the daemon does while you are away; about a minute here)"
$engram caption
say "engram timeline --kind file --limit 6"
$engram timeline --kind file --limit 6
say "engram doctor (the privacy gate, proved on fake secrets)"
$engram doctor
say "engram status"
$engram status
say "is anything readable on disk? (grep for words we just found)"
if grep -rlaF -e "tenancy" -e "发票" -e "312.40" "$ENGRAM_DATA_DIR"; then
    echo "plaintext found on disk!" >&2
    exit 1
fi
echo "no plaintext: every file under $ENGRAM_DATA_DIR is sealed"
