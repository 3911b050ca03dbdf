#!/bin/bash
# Alternating A/B of the serve bench's majority:4 throughput phase (vLLM): the same bench from an
# older tree (BASE, e.g. `git archive COMMIT | tar -x -C BASE`) and from this tree, ROUNDS times,
# so that the machine's changing load hits both alike. Prints one line per run; raw JSON in OUT
# (each run also rewrites bench/results/serve.json and serve.md of its tree).
#
#     bash bench/serve_ab.sh BASE [ROUNDS] [OUT]
set -u
base=$1; rounds=${2:-2}; out=${3:-/tmp/serve_ab}; here=$(cd "$(dirname "$0")/.." && pwd)
py=${PYTHON:-$here/.venv/bin/python}
mkdir -p "$out"
for round in $(seq "$rounds"); do
  for side in base new; do
    dir=$here; [ $side = base ] && dir=$base
    load0=$(cut -d' ' -f1 /proc/loadavg)
    (cd "$dir" && PYTHONPATH=. timeout 900 "$py" bench/bench_serve.py --engine vllm --phases throughput \
      --workload majority:4 >"$out/${side}_$round.json" 2>"$out/${side}_$round.err")
    "$py" - "$out/${side}_$round.json" "$side" "$round" "$load0" "$(cut -d' ' -f1 /proc/loadavg)" <<'PY'
import json, sys
path, side, rnd, l0, l1 = sys.argv[1:]
d = json.load(open(path))["throughput"]["vllm majority:4"]
s, c = d["sequential"], d["concurrent"]
print(f"round {rnd} {side}: {d['throughput_ratio']}x, sequential {s['generated_tokens_per_s']} tok/s, "
      f"concurrent {c['generated_tokens_per_s']} tok/s, mean batch {c['mean_batch_size']}, load {l0}-{l1}")
PY
  done
done
