# Entry points a newcomer runs. `make plan` needs only the core install; `make test` the CPU engines too.
PY := .venv/bin/python
TTSPLAN := .venv/bin/ttsplan

.PHONY: setup-planner setup plan test lint bench

setup-planner:
	bash scripts/install.sh planner

setup:
	bash scripts/install.sh cpu

plan: setup-planner
	$(TTSPLAN) plan --policy Qwen2.5-1.5B-Instruct --prm Qwen2.5-Math-PRM-7B --dataset math500 --budget-flops 1e15

test: setup
	.venv/bin/ruff check planner calibration tests bench
	.venv/bin/pytest -q

bench: setup
	$(PY) bench/bench_plan.py
	$(PY) bench/bench_fit.py
