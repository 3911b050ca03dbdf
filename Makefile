# Entry points a newcomer runs. `make plan` needs only the core install; `make test` the CPU engines too.
PY := .venv/bin/python
TTSPLAN := .venv/bin/ttsplan

.PHONY: setup-planner setup plan test lint bench

setup-planner:
	bash scripts/install.sh planner

setup:
	bash scripts/install.sh cpu

# The main job on the embedded default: Gemma-3-270m (calibrated on this CPU, profiles/cpu_arith_gemma)
# with the exact step checker on the synthetic arithmetic set, at most 16 samples per problem.
plan: setup-planner
	$(TTSPLAN) plan --policy gemma-3-270m --prm arith-check --dataset arith --budget-n 16 \
		--aggregation last --aggregation min --aggregation mean

test: setup
	.venv/bin/ruff check planner calibration tests bench
	.venv/bin/pytest -q

bench: setup
	$(PY) bench/bench_plan.py
	$(PY) bench/bench_fit.py
