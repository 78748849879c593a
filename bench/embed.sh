#!/bin/sh
# Embedding throughput of engram's candle embedder against the Python reference
# (sentence-transformers on PyTorch), on the same texts and the same cores, in one run:
# engram, engram with every product in f32 (no AMX tiles), PyTorch, then engram again, so
# drift from other load on the machine shows.
#
# Usage: bench/embed.sh [VENV]
#   VENV: a throwaway virtualenv with sentence-transformers (made here when missing: PyPI's
#   torch wheel brings about 5 GB with its CUDA libraries). Tests never use it.
set -eu
cd "$(dirname "$0")/.."
venv=${1:-${TMPDIR:-/tmp}/engram-st-venv}
model=${ENGRAM_MODELS:-${XDG_DATA_HOME:-$HOME/.local/share}/engram/models}/all-MiniLM-L6-v2
[ -f "$model/model.safetensors" ] || scripts/fetch-models.sh
if ! [ -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q sentence-transformers
fi
texts=$(mktemp)
trap 'rm -f "$texts"' EXIT
echo "== engram (candle), run 1"
EMBED_TEXTS_OUT=$texts cargo bench -q --bench embed
echo "== engram (candle), every product in f32 (ENGRAM_EMBED_F32=1)"
ENGRAM_EMBED_F32=1 cargo bench -q --bench embed
echo "== sentence-transformers (PyTorch), same texts"
"$venv/bin/python" bench/embed_reference.py "$model" "$texts" 2>&1 | grep -v -e Warning -e "Loading weights"
echo "== engram (candle), run 2"
cargo bench -q --bench embed
