#!/usr/bin/env bash
# The executor's acceptance run: embedded Gemma-3-270m, LM-judge verifier (Gemma itself),
# 20 synthetic arithmetic problems (10 of level 1, 10 of level 2), every method.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT_DIR:-bench/results/gemma_arith}
mkdir -p "$out"
common=(--dataset arith:per_level=10 --limit 20 --policy google/gemma-3-270m --verifier lm-judge
        --engine "${ENGINE:-vllm}" --seed 0 --batch-size 20 --json)
run() { name=$1; shift; .venv/bin/ttsplan run "${common[@]}" "$@" --out "$out/$name.jsonl" | tail -n 1 > "$out/$name.summary.json"; }
run cot        --method cot --n 1
run majority8  --method majority --n 8
run bon8       --method best_of_n --n 8 --aggregation last --selection max
run beam8      --method beam --n 8 --beam-width 4 --aggregation last --selection max
run dvts8      --method dvts --n 8 --beam-width 4 --aggregation last --selection max
for f in "$out"/*.summary.json; do echo "$(basename "$f" .summary.json): $(cat "$f")"; done
