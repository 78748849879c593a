#!/usr/bin/env bash
# MuPDF's text extraction (mutool draw -F txt) against the pdftotext references of an earlier
# bench/pdf-corpus.sh run, on the same pdf.js corpus, scored alike (issue 18: "poppler or MuPDF,
# whichever measures better"). usage: bench/pdf-mupdf.sh PDFJS_GIT_DIR REF_OUT_DIR [MUPDF_OUT_DIR]
# The corpus is copied as pdf-corpus.sh copies it; MuPDF's texts and figures go next to the
# references (REF_OUT_DIR/mupdf/, mupdf-results.json, mupdf-stderr.log) unless MUPDF_OUT_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/lib.sh

git_dir=${1:?usage: bench/pdf-mupdf.sh PDFJS_GIT_DIR REF_OUT_DIR [MUPDF_OUT_DIR]}
ref_out=${2:?usage: bench/pdf-mupdf.sh PDFJS_GIT_DIR REF_OUT_DIR [MUPDF_OUT_DIR]}
apt_install mupdf-tools poppler-utils

corpus=$(mktemp -d /tmp/engram-pdf-corpus.XXXXXX)
trap 'rm -rf "$corpus"' EXIT
while IFS= read -r path; do
    name=${path#test/pdfs/}
    git --git-dir="$git_dir" cat-file blob "HEAD:$path" >"$corpus/${name//\//_}" 2>/dev/null \
        || rm -f "$corpus/${name//\//_}"
done < <(git --git-dir="$git_dir" ls-tree -r --name-only HEAD -- test/pdfs/ | grep -i '\.pdf$')
say "pdf.js $(git --git-dir="$git_dir" rev-parse HEAD): $(ls "$corpus" | wc -l) PDFs copied; $(mutool -v 2>&1 | head -1)"

python3 bench/pdf_mupdf.py "$corpus" "$ref_out" ${3:+"$3"}
