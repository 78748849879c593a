#!/usr/bin/env bash
# Questions a user would ask of the bundled sample (assets/sample: mail, notes, receipts, work
# notes, Chinese notes), each with the words a right answer contains (any of them, split by |).
# Prints each answer with 1 (right) or 0, then how many were right. A development set: the
# questions were written against the sample, so it shows what a change does to answers a user
# sees, next to the shared xquad sets (cargo bench --bench ask) that measure the same on unseen data.
# Usage: bench/ask-sample.sh [QUESTIONS.tsv, default bench/sample-questions.tsv]
#        ENGRAM_BIN=target/release/engram bench/ask-sample.sh   (skip the build)
set -euo pipefail
cd "$(dirname "$0")/.."
questions=${1:-bench/sample-questions.tsv}
. bench/sample-store.sh
right=0
total=0
while IFS=$'\t' read -r question want; do
    answer=$($engram ask --json "$question" | python3 -c 'import json, sys; print(json.load(sys.stdin)["answer"].replace("\n", " "))')
    hit=0
    IFS='|' read -ra wants <<< "$want"
    for w in "${wants[@]}"; do
        if [[ "$answer" == *"$w"* ]]; then hit=1; fi
    done
    right=$((right + hit))
    total=$((total + 1))
    printf '%s\t%s\t%s\n' "$hit" "$question" "$answer"
done < "$questions"
echo "right: $right of $total"
