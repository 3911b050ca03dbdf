#!/usr/bin/env bash
# Follow-up to demo_gemma_arith.sh on the same 20 problems: majority at a lower temperature, and the
# verifier methods with the exact arithmetic step checker instead of Gemma judging itself.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT_DIR:-bench/results/gemma_arith}
mkdir -p "$out"
common=(--dataset arith:per_level=10 --limit 20 --policy google/gemma-3-270m
        --engine "${ENGINE:-vllm}" --seed 0 --batch-size 20 --json)
run() { name=$1; shift; .venv/bin/ttsplan run "${common[@]}" "$@" --out "$out/$name.jsonl" | tail -n 1 > "$out/$name.summary.json"; }
run majority8_t03  --method majority --n 8 --temperature 0.3
run bon8_check     --method best_of_n --n 8 --aggregation min --selection max --verifier arith-check
run beam8_check    --method beam --n 8 --beam-width 4 --aggregation min --selection max --verifier arith-check
run dvts8_check    --method dvts --n 8 --beam-width 4 --aggregation min --selection max --verifier arith-check
