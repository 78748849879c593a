#!/usr/bin/env bash
# PDF extraction against poppler's pdftotext on pdf.js's test corpus (BENCHMARKS.md, "Documents:
# PDFs"). usage: bench/pdf-corpus.sh PDFJS_GIT_DIR [OUT_DIR]
#
# PDFJS_GIT_DIR is a git directory of the pdf.js repository (a clone's .git, or a bare snapshot);
# the PDFs under test/pdfs/ at its HEAD are copied into a temporary folder (blobs the snapshot
# lacks are counted and left out; the .link files that name PDFs elsewhere are not fetched).
# Nothing of the corpus is kept in this repository. Then bench/pdf_corpus.py runs pdftotext and
# the engram-extract worker over the same files and prints recall, outcomes and times; per-file
# figures go to OUT_DIR/results.json (no document text is printed).
#
# ENGRAM_EXTRACT names the worker binary (default: target/release/engram-extract, built here).
# Extra arguments for pdf_corpus.py go in PDF_BENCH_ARGS (e.g. "--ocr-pages 0").
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

git_dir=${1:?usage: bench/pdf-corpus.sh PDFJS_GIT_DIR [OUT_DIR]}
out=${2:-$(mktemp -d /tmp/engram-pdf-bench.XXXXXX)}
ensure_tools
if [ -z "${ENGRAM_EXTRACT:-}" ]; then
    cargo build --release --locked --bin engram-extract >&2
    ENGRAM_EXTRACT=target/release/engram-extract
fi

corpus=$(mktemp -d /tmp/engram-pdf-corpus.XXXXXX)
trap 'rm -rf "$corpus"' EXIT
commit=$(git --git-dir="$git_dir" rev-parse HEAD)
copied=0 missing=0
while IFS= read -r path; do
    name=${path#test/pdfs/}
    name=${name//\//_}
    if git --git-dir="$git_dir" cat-file blob "HEAD:$path" >"$corpus/$name" 2>/dev/null; then
        copied=$((copied + 1))
    else
        rm -f "$corpus/$name"
        missing=$((missing + 1))
    fi
done < <(git --git-dir="$git_dir" ls-tree -r --name-only HEAD -- test/pdfs/ | grep -i '\.pdf$')
say "pdf.js $commit: $copied PDFs copied, $missing absent from the snapshot"

python3 bench/pdf_corpus.py "$corpus" "$out" "$ENGRAM_EXTRACT" ${PDF_BENCH_ARGS:-}
say "per-file results: $out/results.json"
