#!/usr/bin/env bash
# Office and e-book extraction quality (issue 18, item 4): engram's extraction worker against each
# format's own reader, over the test documents of a repository snapshot (not committed).
#
#   bench/office-corpus.sh SNAPSHOT [PATH_REGEX]
#
# SNAPSHOT: a checkout, or a bare git directory (as `fetch` leaves under /work/.mirror), of a
# project with office test files, e.g. Apache Tika (…/src/test/resources/test-documents/) or
# pandoc (test/docx, test/odt, test/pptx …). PATH_REGEX picks the files' folders (default: any
# folder named test, tests or test-documents). $VENV (default /tmp/venv-office) gets
# python-calamine, python-pptx and odfpy from PyPI.
# LibreOffice (`soffice`) on PATH is the reference for Word-processing files; without it they
# are extracted but not scored. Builds engram-extract (debug) if it is not built.
set -euo pipefail
snapshot=${1:?usage: bench/office-corpus.sh SNAPSHOT [PATH_REGEX]}
folders=${2:-'(^|/)(test|tests|test-documents)/'}
venv=${VENV:-/tmp/venv-office}
root=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/office-corpus.XXXXXX)
files=$work/files
mkdir -p "$files"
pattern='\.(docx|docm|dotx|odt|rtf|epub|xlsx|xlsm|xlsb|xls|ods|pptx|pptm|odp|doc)$'

# Copy the corpus flat, each file under a unique name (LibreOffice names its output by stem).
n=0 absent=0
if git --git-dir="$snapshot" rev-parse --is-bare-repository >/dev/null 2>&1; then
  while IFS= read -r path; do
    n=$((n + 1))
    out=$files/$(printf %04d $n)-$(basename "$path")
    # A snapshot may leave its largest files out: those are counted, not read.
    git --git-dir="$snapshot" show "HEAD:$path" >"$out" 2>/dev/null || { rm -f "$out"; absent=$((absent + 1)); }
  done < <(git --git-dir="$snapshot" ls-tree -r --name-only HEAD | grep -E "$folders" | grep -iE "$pattern")
else
  while IFS= read -r path; do
    n=$((n + 1))
    cp "$path" "$files/$(printf %04d $n)-$(basename "$path")"
  done < <(cd "$snapshot" && find . -type f | sed 's#^\./##' | grep -E "$folders" | grep -iE "$pattern" | sed "s#^#$snapshot/#")
fi
echo "$n files from $snapshot ($absent of them absent from it)" >&2

[[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
"$venv/bin/pip" install -q python-calamine python-pptx odfpy >&2

worker=$root/target/debug/engram-extract
[[ -x "$worker" ]] || (cd "$root" && cargo build --locked --bin engram-extract >&2)
RUST_BACKTRACE=0 "$venv/bin/python" "$root/bench/office_corpus.py" "$files" "$work" "$worker"
