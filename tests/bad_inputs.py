"""A table of bad inputs over every `ttsplan` command, each of which must give one line on
stderr and exit code 2 (tests/test_bad_inputs.py; bench/reliability.py counts them).

A case is (command, id, argv). "{T}" in an argument is the folder `materialize` fills with
crafted files: profiles, config.json files, model files, plan files, grids, a named pipe.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pandas as pd

from tests.plan_helpers import POLICIES, records

T = "{T}"
POLICY = "qwen2.5-1.5b"
RUN_POLICY = "smollm2-135m-instruct"
JSON_COMMANDS = ("plan", "predict", "cost", "fit", "evaluate", "run", "calibrate")

BAD_NUMBERS = ["0", "-1", "nan", "inf", "-inf", "1e400", "abc", "", "1e31"]
BAD_INTS = ["0", "-4", "99999999999999999999", "1.5", "abc", "", "70000"]
BAD_DATASETS = [
    "math9000",
    "arith:per_level=abc",
    "arith:bogus",
    "math500:x",
    "arith:per_level=1000000000",
    "arith:size=7",
    "arith:size=0",
    "arith:seed=abc",
    "arith:per_level=-1",
    "arith:per_level=1e3",
    " ",
]
BAD_CONFIGS = [
    "huge.json",
    "floats.json",
    "strings.json",
    "list.json",
    "deep.json",
    "notjson.json",
    "negative.json",
    "moe.json",
    "bigparams.json",
    "missing.json",
    "emptydir",
]
BAD_MODELS = [
    "pickle.skops",
    "crafted.skops",
    "nomanifest.skops",
    "badmanifest.skops",
    "mismatch.skops",
    "otherclass.skops",
    "missing.skops",
    "emptydir",
]
BAD_OUT_FILES = ["/dev/null", "/dev/full", f"{T}/fifo", T, "/proc/x.json", f"{T}/nodir/x.json"]
BAD_PROFILES = [
    "missing",
    "emptydir",
    "afile.txt",
    "p_inf_flops",
    "p_n_huge",
    "p_tokens_inf",
    "p_bad_meta",
    "p_deep_meta",
    "p_corrupt",
    "p_fingerprint",
    "p_no_records",
    "p_accuracy",
]


# config.json files for `ttsplan cost --model-config` (one good, three absurd); shared with
# tests/test_cli_properties.py
MODEL_CONFIGS = {
    "good.json": {
        "hidden_size": 896,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "vocab_size": 151936,
        "intermediate_size": 4864,
    },
    "huge.json": {
        "hidden_size": 10**30,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "vocab_size": 10,
        "intermediate_size": 10,
    },
    "floats.json": {
        "hidden_size": 1e30,
        "num_hidden_layers": 2.5,
        "num_attention_heads": 14,
        "vocab_size": 10,
        "intermediate_size": 10,
    },
    "strings.json": {"hidden_size": "896", "num_hidden_layers": None, "architectures": {"a": 1}},
}


def _cases() -> list[tuple[str, str, list[str]]]:
    cases: list[tuple[str, str, list[str]]] = []

    def add(command: str, name: str, argv: list[str]) -> None:
        cases.append((command, f"{command}-{name}", argv))

    # ---------------------------------------------------------------- plan
    plan = ["plan", "--policy", POLICY, "--dataset", "math500"]
    for flag in ("--budget-n", "--budget-flops"):
        for v in BAD_NUMBERS:
            add("plan", f"{flag}={v}", [*plan, flag, v])
    for v in ("0", "nan", "abc", "-2"):
        add("plan", f"--budget-seconds={v}", [*plan, "--hardware", "h100", "--budget-seconds", v])
    add("plan", "seconds-without-hardware", [*plan, "--budget-seconds", "1"])
    add("plan", "two-budgets", [*plan, "--budget-n", "4", "--budget-flops", "1e15"])
    add("plan", "no-budget", plan)
    budget = [*plan, "--budget-n", "16"]
    for v in BAD_INTS:
        add("plan", f"--beam-width={v}", [*budget, "--beam-width", v])
    add("plan", "beam-width-3-beam", [*budget, "--beam-width", "3", "--method", "beam"])
    add("plan", "beam-width-3-dvts", [*budget, "--beam-width", "3", "--method", "dvts"])
    for v in ("-1", "10001", "abc", "99999999999999999999"):
        add("plan", f"--top={v}", [*budget, "--top", v])
    for v in ("", "nope", "Qwen/Qwen2.5-Math-PRM-7B", "../../etc/passwd"):
        add("plan", f"--policy={v}", ["plan", "--policy", v, "--dataset", "math500", "--budget-n", "16"])
    add("plan", "no-policy", ["plan", "--dataset", "math500", "--budget-n", "16"])
    for v in ("nope", POLICY):
        add("plan", f"--prm={v}", [*budget, "--prm", v])
    for v in BAD_DATASETS:
        add("plan", f"--dataset={v}", ["plan", "--policy", POLICY, "--budget-n", "16", "--dataset", v])
    add("plan", "no-dataset-nor-difficulty", ["plan", "--policy", POLICY, "--budget-n", "16"])
    for v in ("extreme", ""):
        add("plan", f"--difficulty={v}", [*budget, "--difficulty", v])
    add("plan", "--hardware=tpu9000", [*budget, "--hardware", "tpu9000"])
    add("plan", "--method=mcts", [*budget, "--method", "mcts"])
    add("plan", "--aggregation=max", [*budget, "--aggregation", "max"])
    add("plan", "--selection=min", [*budget, "--selection", "min"])
    add("plan", "budget-below-cheapest", [*plan, "--budget-flops", "10"])
    for v in BAD_OUT_FILES:
        add("plan", f"--out={v}", [*budget, "--out", v])
    for v in BAD_MODELS:
        add("plan", f"--model={v}", [*budget, "--model", f"{T}/{v}"])
    for v in BAD_CONFIGS:
        add(
            "plan",
            f"--model-config={v}",
            ["plan", "--model-config", f"{T}/{v}", "--dataset", "math500", "--budget-n", "16"],
        )
    add("plan", "per-bin-and-difficulty", [*budget, "--per-bin", "--difficulty", "easy"])
    add("plan", "mix-without-per-bin", [*budget, "--mix", "easy=0.3,medium=0.4,hard=0.3"])
    for v in ("easy=2", "x", "easy=nan,medium=0.5,hard=0.5", "easy=0.3,medium=0.4", "hard=1,hard=0"):
        add("plan", f"--mix={v}", [*budget, "--per-bin", "--mix", v])
    for v in ("0", "99999999", "abc"):
        add(
            "plan",
            f"--probe-k={v}",
            [*budget, "--per-bin", "--mix", "easy=1,medium=0,hard=0", "--probe-k", v],
        )
    add("plan", "unknown-flag", [*budget, "--bogus"])
    add("plan", "extra-argument", [*budget, "extra"])

    # ---------------------------------------------------------------- predict
    predict = ["predict", "--policy", POLICY, "--dataset", "math500"]
    majority = [*predict, "--method", "majority"]
    for v in BAD_INTS:
        add("predict", f"--n={v}", [*majority, "--n", v])
    add("predict", "--n=1e23", [*majority, "--n", "99999999999999999999999"])
    add("predict", "--n=2048-past-extrapolation", [*majority, "--n", "2048"])
    add("predict", "--method=mcts", [*predict, "--method", "mcts", "--n", "4"])
    add("predict", "no-method", [*predict, "--n", "4"])
    add("predict", "majority-no-n", majority)
    add("predict", "cot-n-4", [*predict, "--method", "cot", "--n", "4"])
    add("predict", "majority-with-prm", [*majority, "--n", "4", "--prm", "Qwen2.5-Math-PRM-7B"])
    add("predict", "majority-aggregation", [*majority, "--n", "4", "--aggregation", "last"])
    bon = [*predict, "--method", "best_of_n", "--n", "4", "--prm", "Qwen2.5-Math-PRM-7B"]
    add("predict", "bon-no-aggregation", bon)
    add(
        "predict",
        "bon-no-prm",
        [*predict, "--method", "best_of_n", "--n", "4", "--aggregation", "last", "--selection", "max"],
    )
    add("predict", "bon-aggregation-max", [*bon, "--aggregation", "max", "--selection", "max"])
    add("predict", "bon-selection-min", [*bon, "--aggregation", "last", "--selection", "min"])
    beam = [
        *predict,
        "--method",
        "beam",
        "--prm",
        "Qwen2.5-Math-PRM-7B",
        "--aggregation",
        "last",
        "--selection",
        "max",
    ]
    add("predict", "beam-n-6-width-4", [*beam, "--n", "6", "--beam-width", "4"])
    add("predict", "beam-n-2-width-4", [*beam, "--n", "2", "--beam-width", "4"])
    for v in ("0", "-1", "99999999999999999999", "abc"):
        add("predict", f"beam-width={v}", [*beam, "--n", "16", "--beam-width", v])
    add(
        "predict",
        "orm-with-beam",
        [
            *predict,
            "--method",
            "beam",
            "--prm",
            "Qwen2.5-Math-RM-72B",
            "--n",
            "16",
            "--aggregation",
            "last",
            "--selection",
            "max",
        ],
    )
    for v in BAD_DATASETS:
        add(
            "predict",
            f"--dataset={v}",
            ["predict", "--policy", POLICY, "--method", "majority", "--n", "4", "--dataset", v],
        )
    add("predict", "--difficulty=extreme", [*majority, "--n", "4", "--difficulty", "extreme"])
    add("predict", "--hardware=tpu9000", [*majority, "--n", "4", "--hardware", "tpu9000"])
    add("predict", "policy-and-config", [*majority, "--n", "4", "--model-config", f"{T}/good.json"])
    add("predict", "no-policy", ["predict", "--dataset", "math500", "--method", "majority", "--n", "4"])
    for v in BAD_MODELS:
        add("predict", f"--model={v}", [*majority, "--n", "4", "--model", f"{T}/{v}"])
    for v in BAD_CONFIGS:
        add(
            "predict",
            f"--model-config={v}",
            [
                "predict",
                "--model-config",
                f"{T}/{v}",
                "--dataset",
                "math500",
                "--method",
                "majority",
                "--n",
                "4",
            ],
        )

    # ---------------------------------------------------------------- cost
    cost = ["cost", "--model", POLICY]
    for v in [*BAD_INTS[:-1], "10000001", "1e3"]:  # (70000 is a fine context)
        add("cost", f"--context={v}", [*cost, "--context", v])
    for v in ("nope", "", " ", "Qwen/Qwen9-1T"):
        add("cost", f"--model={v}", ["cost", "--model", v])
    add("cost", "no-model", ["cost"])
    add("cost", "--role=judge", ["cost", "--model-config", f"{T}/good.json", "--role", "judge"])
    for v in BAD_CONFIGS:
        add("cost", f"--model-config={v}", ["cost", "--model-config", f"{T}/{v}"])
    for v in ("/dev/null", "/proc/self/status"):
        add("cost", f"--model-config={v}", ["cost", "--model-config", v])

    # ---------------------------------------------------------------- fit
    for v in [*BAD_OUT_FILES, f"{T}/mdir.skops"]:
        add("fit", f"--out={v}", ["fit", "--profiles", f"{T}/profile", "--out", v])
    for v in BAD_PROFILES:
        add("fit", f"--profiles={v}", ["fit", "--profiles", f"{T}/{v}", "--out", f"{T}/m.skops"])
    add("fit", "profiles-/dev/null", ["fit", "--profiles", "/dev/null", "--out", f"{T}/m.skops"])
    add(
        "fit",
        "same-profile-twice",
        ["fit", "--profiles", f"{T}/profile", f"{T}/profile", "--out", f"{T}/m.skops"],
    )
    add("fit", "no-profiles", ["fit", "--out", f"{T}/m.skops"])
    add("fit", "no-out", ["fit", "--profiles", f"{T}/profile"])

    # ---------------------------------------------------------------- evaluate
    evaluate = ["evaluate", "--profiles", f"{T}/profile"]
    for v in BAD_INTS:
        add("evaluate", f"--budgets={v}", [*evaluate, "--budgets", v])
    for v in BAD_NUMBERS:
        add("evaluate", f"--budget-flops={v}", [*evaluate, "--budget-flops", v])
    add("evaluate", "--holdout=bogus", [*evaluate, "--holdout", "bogus"])
    for v in BAD_PROFILES:
        add("evaluate", f"--profiles={v}", ["evaluate", "--profiles", f"{T}/{v}"])

    # ---------------------------------------------------------------- report
    for v in ("/dev/null", f"{T}/afile.txt", "/proc/rep", f"{T}/nodir/rep", f"{T}/fifo"):
        add("report", f"--out={v}", ["report", f"{T}/profile", "--out", v])
    for v in BAD_MODELS:
        add("report", f"--model={v}", ["report", f"{T}/profile", "--out", f"{T}/rep", "--model", f"{T}/{v}"])
    for v in BAD_PROFILES:
        add("report", f"profiles={v}", ["report", f"{T}/{v}", "--out", f"{T}/rep"])
    add("report", "no-out", ["report", f"{T}/profile"])

    # ---------------------------------------------------------------- run
    run = ["run", "--dataset", "arith", "--policy", RUN_POLICY, "--out", f"{T}/r.jsonl"]
    maj = [*run, "--method", "majority"]
    for v in BAD_INTS:
        add("run", f"--n={v}", [*maj, "--n", v])
    for v in BAD_DATASETS:
        add(
            "run",
            f"--dataset={v}",
            [
                "run",
                "--policy",
                RUN_POLICY,
                "--method",
                "majority",
                "--n",
                "4",
                "--out",
                f"{T}/r.jsonl",
                "--dataset",
                v,
            ],
        )
    for v in ("0", "-1", "99999999999", "abc"):
        add("run", f"--limit={v}", [*maj, "--n", "4", "--limit", v])
    for v in ("0", "-1", "99999999999", "abc"):
        add("run", f"--batch-size={v}", [*maj, "--n", "4", "--batch-size", v])
    for v in ("-1", "99999999999999999999", "abc"):
        add("run", f"--seed={v}", [*maj, "--n", "4", "--seed", v])
    for v in ("nan", "-1", "inf", "11", "abc"):
        add("run", f"--temperature={v}", [*maj, "--n", "4", "--temperature", v])
    for flag in ("--max-steps", "--max-step-tokens", "--max-total-tokens"):
        for v in ("0", "99999999999"):
            add("run", f"{flag}={v}", [*maj, "--n", "4", flag, v])
    add("run", "--method=mcts", [*run, "--method", "mcts", "--n", "4"])
    add("run", "--engine=bogus", [*maj, "--n", "4", "--engine", "bogus"])
    add(
        "run",
        "--policy=nope",
        [
            "run",
            "--dataset",
            "arith",
            "--policy",
            "nope",
            "--method",
            "majority",
            "--n",
            "4",
            "--out",
            f"{T}/r.jsonl",
        ],
    )
    add(
        "run",
        "--verifier=bogus",
        [
            *run,
            "--method",
            "best_of_n",
            "--n",
            "4",
            "--verifier",
            "bogus",
            "--aggregation",
            "last",
            "--selection",
            "max",
        ],
    )
    add(
        "run",
        "bon-no-verifier",
        [*run, "--method", "best_of_n", "--n", "4", "--aggregation", "last", "--selection", "max"],
    )
    add("run", "cot-n-4", [*run, "--method", "cot", "--n", "4"])
    add(
        "run",
        "beam-n-6-width-4",
        [*run, "--method", "beam", "--n", "6", "--beam-width", "4", "--verifier", "arith-check"],
    )
    add(
        "run",
        "no-dataset",
        ["run", "--policy", RUN_POLICY, "--method", "majority", "--n", "4", "--out", f"{T}/r.jsonl"],
    )
    add(
        "run",
        "no-out",
        ["run", "--dataset", "arith", "--policy", RUN_POLICY, "--method", "majority", "--n", "4"],
    )
    for v in ("/dev/null", T, f"{T}/fifo", f"{T}/nodir/r.jsonl", f"{T}/notrecords.jsonl"):
        add(
            "run",
            f"--out={v}",
            [
                "run",
                "--dataset",
                "arith",
                "--policy",
                RUN_POLICY,
                "--method",
                "majority",
                "--n",
                "4",
                "--out",
                v,
            ],
        )
    for v in (
        "plan_missing.json",
        "plan_notjson.json",
        "plan_deep.json",
        "plan_kind.json",
        "plan_empty.json",
        "plan_big.json",
    ):
        add("run", f"plan={v}", ["run", f"{T}/{v}", "--dataset", "arith", "--out", f"{T}/r.jsonl"])
    add(
        "run",
        "plan-and-method",
        ["run", f"{T}/plan_good.json", "--dataset", "arith", "--out", f"{T}/r.jsonl", "--method", "cot"],
    )
    add("run", "adaptive-missing", [*run, "--adaptive", f"{T}/plan_missing.json"])
    add("run", "adaptive-single-plan", [*run, "--adaptive", f"{T}/plan_good.json"])

    # ---------------------------------------------------------------- calibrate
    cal = ["calibrate", "--policy", RUN_POLICY, "--out", f"{T}/cal", "--quiet"]
    for flag in ("--n", "--tree-n", "--beam-width", "--difficulty-samples"):
        for v in ("0", "99999999999", "abc"):
            add("calibrate", f"{flag}={v}", [*cal, flag, v])
    add("calibrate", "tree-n-not-divisible", [*cal, "--tree-n", "6", "--beam-width", "4"])
    add("calibrate", "width-above-n", [*cal, "--tree-n", "2", "--beam-width", "4"])
    add("calibrate", "--method=mcts", [*cal, "--method", "mcts"])
    add("calibrate", "--verifier=bogus", [*cal, "--verifier", "bogus"])
    add("calibrate", "--aggregation=max", [*cal, "--aggregation", "max"])
    for v in BAD_DATASETS:
        add("calibrate", f"--dataset={v}", [*cal, "--dataset", v])
    for flag in (
        "--limit",
        "--stratify",
        "--batch-size",
        "--max-steps",
        "--max-step-tokens",
        "--max-total-tokens",
    ):
        for v in ("0", "99999999999"):
            add("calibrate", f"{flag}={v}", [*cal, flag, v])
    add("calibrate", "limit-above-stratify", [*cal, "--stratify", "5", "--limit", "10"])
    add("calibrate", "--engine=bogus", [*cal, "--engine", "bogus"])
    add("calibrate", "--seed=-1", [*cal, "--seed", "-1"])
    for v in ("nan", "-1", "3", "inf", "0"):
        add("calibrate", f"--temperature={v}", [*cal, "--temperature", v])
    for v in ("../../x", "", ".hidden", "a/b", "/abs"):
        add("calibrate", f"--name={v}", ["calibrate", "--policy", RUN_POLICY, "--quiet", "--name", v])
    for v in ("0", "99999", "abc"):
        add("calibrate", f"--jobs={v}", [*cal, "--jobs", v])
    for v in ("-1", "nan", "1"):
        add("calibrate", f"--worker-gpus={v}", [*cal, "--worker-gpus", v])
    add("calibrate", "--redo=bogus", [*cal, "--redo", "bogus"])
    add("calibrate", "--policy=nope", ["calibrate", "--policy", "nope", "--out", f"{T}/cal", "--quiet"])
    add("calibrate", "no-policy", ["calibrate", "--out", f"{T}/cal", "--quiet"])
    for v in ("/dev/null", f"{T}/afile.txt", "/proc/cal"):
        add("calibrate", f"--out={v}", ["calibrate", "--policy", RUN_POLICY, "--quiet", "--out", v])
    for v in GRIDS:
        add("calibrate", f"grid={v}", ["calibrate", "--grid", f"{T}/{v}", "--out", f"{T}/cal", "--quiet"])
    for v in ("missing.toml", "emptydir", "/dev/null"):
        add(
            "calibrate",
            f"grid={v}",
            ["calibrate", "--grid", f"{T}/{v}" if "/" not in v else v, "--out", f"{T}/cal"],
        )

    # ---------------------------------------------------------------- import
    add("import", "published-unknown", ["import", "published", "nope", "--out", f"{T}/imp"])
    add("import", "published-out-file", ["import", "published", "liu2025_tables", "--out", f"{T}/afile.txt"])
    add("import", "published-out-proc", ["import", "published", "liu2025_tables", "--out", "/proc/imp"])
    add(
        "import",
        "published-data-dir",
        ["import", "published", "liu2025_tables", "--out", f"{T}/imp", "--data-dir", f"{T}/emptydir"],
    )
    persample = ["import", "persample", f"{T}/samples.csv", "--out", f"{T}/imp", "--dataset", "math100"]
    for v in ("0,1", "abc", "1,,x", "-2"):
        add("import", f"persample-ks={v}", [*persample, "--ks", v])
    for v in ("missing.csv", "garbage.csv", "empty.csv", "emptydir"):
        add(
            "import",
            f"persample-file={v}",
            ["import", "persample", f"{T}/{v}", "--out", f"{T}/imp", "--dataset", "math100"],
        )
    add("import", "persample-aggregation", [*persample, "--aggregation", "max"])
    add("import", "persample-vote-weight", [*persample, "--vote-weight", "bogus"])
    add(
        "import",
        "persample-out-file",
        ["import", "persample", f"{T}/samples.csv", "--out", "/dev/null", "--dataset", "math100"],
    )
    for v in (
        "missing.json",
        "notjson.json",
        "list.json",
        "deep.json",
        "garbage.csv",
        "emptydir",
        "numbers.jsonl",
    ):
        add("import", f"sal-file={v}", ["import", "sal", f"{T}/{v}", "--out", f"{T}/imp"])
    add("import", "shipped-root-file", ["import", "shipped", "--root", f"{T}/afile.txt"])
    add("import", "shipped-root-proc", ["import", "shipped", "--root", "/proc/x"])

    # ---------------------------------------------------------------- the command line itself
    add("cli", "unknown-command", ["bogus"])
    add("cli", "plan-unknown-flag-only", ["plan", "--bogus"])
    add("cli", "import-unknown", ["import", "bogus"])
    return cases


GRIDS = {
    "g_notoml.toml": "this is = = not toml",
    "g_unknown_key.toml": 'policies = ["smollm2-135m-instruct"]\nbogus = 1\n',
    "g_unknown_table.toml": 'policies = ["smollm2-135m-instruct"]\n[bogus]\nn = [1]\n',
    "g_table_key.toml": 'policies = ["smollm2-135m-instruct"]\n[sampling]\nbogus = 1\n',
    "g_table_not_sampling.toml": 'policies = ["smollm2-135m-instruct"]\n[sampling]\nmethods = ["cot"]\n',
    "g_name_escape.toml": 'name = "../../somewhere"\npolicies = ["smollm2-135m-instruct"]\n',
    "g_name_slash.toml": 'name = "a/b"\npolicies = ["smollm2-135m-instruct"]\n',
    "g_huge_dataset.toml": 'dataset = "arith:per_level=1000000000"\npolicies = ["smollm2-135m-instruct"]\n',
    "g_dataset_options.toml": 'dataset = "math500:x"\npolicies = ["smollm2-135m-instruct"]\n',
    "g_n_zero.toml": 'policies = ["smollm2-135m-instruct"]\nn = [0, 2]\n',
    "g_n_huge.toml": 'policies = ["smollm2-135m-instruct"]\nn = [99999999999]\n',
    "g_n_str.toml": 'policies = ["smollm2-135m-instruct"]\nn = "abc"\n',
    "g_n_float.toml": 'policies = ["smollm2-135m-instruct"]\nn = [1.5]\n',
    "g_temp_str.toml": 'policies = ["smollm2-135m-instruct"]\n[sampling]\ntemperature = "hot"\n',
    "g_temp_nan.toml": 'policies = ["smollm2-135m-instruct"]\n[sampling]\ntemperature = nan\n',
    "g_top_p.toml": 'policies = ["smollm2-135m-instruct"]\n[sampling]\ntop_p = 0\n',
    "g_twice.toml": 'policies = ["smollm2-135m-instruct"]\nseed = 1\n[sampling]\nseed = 2\n',
    "g_no_policies.toml": 'name = "x"\n',
    "g_policies_empty.toml": "policies = []\n",
    "g_tree_not_div.toml": 'policies = ["smollm2-135m-instruct"]\ntree_n = [6]\nbeam_widths = [4]\n',
    "g_quantile.toml": 'policies = ["smollm2-135m-instruct"]\nquantile_levels = "yes"\n',
    "g_batch_huge.toml": 'policies = ["smollm2-135m-instruct"]\nbatch_size = 99999999999\n',
    "g_utf16.toml": None,  # written as UTF-16
    "g_big.toml": None,  # over the size bound (sparse)
}


CASES = _cases()


def materialize(root: Path) -> None:
    """Write the crafted files the cases name into `root`."""
    meta = {
        "name": "synthetic",
        "description": "test",
        "kind": "measured",
        "sources": ["tests"],
        "assumptions": [],
    }
    from planner.core.profiles import write_profile

    good = write_profile(root / "profile", records(policies=POLICIES[:3]), meta)
    (root / "emptydir").mkdir()
    (root / "afile.txt").write_text("not a profile\n")
    os.mkfifo(root / "fifo")
    (root / "mdir.skops.manifest.json").mkdir()

    def raw_profile(name: str, change, meta_text: str | None = None) -> None:
        folder = root / name
        folder.mkdir()
        frame = good.records.copy()
        frame = change(frame) if change else frame
        if frame is not None:
            frame.to_parquet(folder / "records.parquet", index=False)
        text = (
            meta_text
            if meta_text is not None
            else json.dumps({**meta, "name": name, "created": "2026-01-01"})
        )
        (folder / "profile.json").write_text(text)

    raw_profile("p_inf_flops", lambda d: d.assign(flops=float("inf")))
    raw_profile("p_tokens_inf", lambda d: d.assign(policy_tokens=float("inf")))
    raw_profile("p_n_huge", lambda d: d.assign(n=pd.array([10**18] * len(d), dtype="Int64")))
    raw_profile("p_accuracy", lambda d: d.assign(accuracy=1.5))
    raw_profile("p_bad_meta", None, "{not json")
    raw_profile("p_deep_meta", None, "[" * 100_000 + "]" * 100_000)
    raw_profile("p_fingerprint", None, json.dumps({**meta, "created": "2026-01-01", "fingerprint": "0" * 64}))
    raw_profile("p_no_records", lambda d: None)
    raw_profile("p_corrupt", None)
    (root / "p_corrupt" / "records.parquet").write_bytes(b"PAR1 garbage")

    configs = {
        **MODEL_CONFIGS,
        "negative.json": {
            "hidden_size": -896,
            "num_hidden_layers": 24,
            "num_attention_heads": 14,
            "vocab_size": 10,
            "intermediate_size": 10,
        },
        "moe.json": {
            "hidden_size": 896,
            "num_hidden_layers": 24,
            "num_attention_heads": 14,
            "vocab_size": 10,
            "intermediate_size": 10,
            "num_local_experts": 4,
            "num_experts_per_tok": 8,
        },
        "bigparams.json": {
            "hidden_size": 9_000_000,
            "num_hidden_layers": 9_000_000,
            "num_attention_heads": 1,
            "vocab_size": 10,
            "intermediate_size": 9_000_000,
        },
        "list.json": [1, 2, 3],
    }
    for name, cfg in configs.items():
        (root / name).write_text(json.dumps(cfg))
    (root / "deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (root / "notjson.json").write_text("{hidden_size: 896")

    _models(root)

    (root / "plan_notjson.json").write_text("{plan")
    (root / "plan_deep.json").write_text("[" * 100_000 + "]" * 100_000)
    (root / "plan_empty.json").write_text("")
    (root / "plan_kind.json").write_text(
        json.dumps({"format": "ttsplan-plan", "version": 1, "kind": "per_bin"})
    )
    with open(root / "plan_big.json", "wb") as fh:
        fh.truncate(10_000_001)  # sparse: over the bound, nothing written
    (root / "plan_good.json").write_text(
        json.dumps(
            {
                "format": "ttsplan-plan",
                "version": 1,
                "kind": "single",
                "policy": RUN_POLICY,
                "prm": "none",
                "method": "cot",
                "aggregation": "none",
                "selection": "none",
                "n": 1,
                "beam_width": None,
            }
        )
    )
    (root / "notrecords.jsonl").write_text("not json\n")
    for name, text in GRIDS.items():
        if text is not None:
            (root / name).write_text(text)
    (root / "g_utf16.toml").write_bytes('policies = ["x"]\n'.encode("utf-16"))
    with open(root / "g_big.toml", "wb") as fh:
        fh.truncate(1_000_001)
    (root / "samples.csv").write_text("problem_id,sample,correct,score,answer\np1,0,1,0.9,7\np1,1,0,0.2,8\n")
    (root / "garbage.csv").write_bytes(b"\xff\xfe\x00garbage")
    (root / "empty.csv").write_text("")
    (root / "numbers.jsonl").write_text("5\n")


def _models(root: Path) -> None:
    """Model files a hostile user could hand to --model, each with a manifest that matches."""
    import pickle

    import skops.io as sio

    from planner.predict.modelio import manifest_path

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {root}/PWNED",))

    def with_manifest(name: str, data: bytes) -> None:
        (root / name).write_bytes(data)
        manifest_path(root / name).write_text(json.dumps({"sha256": hashlib.sha256(data).hexdigest()}))

    with_manifest("pickle.skops", pickle.dumps(Payload()))
    with_manifest("crafted.skops", sio.dumps({"hook": os.system}))
    with_manifest("otherclass.skops", sio.dumps({"a": [1, 2]}))
    with_manifest("mismatch.skops", b"PK\x03\x04 something")
    manifest_path(root / "mismatch.skops").write_text(json.dumps({"sha256": "0" * 64}))
    (root / "nomanifest.skops").write_bytes(b"PK\x03\x04")
    (root / "badmanifest.skops").write_bytes(b"PK\x03\x04")
    manifest_path(root / "badmanifest.skops").write_text("{not json")
