"""`ttsplan predict / plan --predictor scaling` with the shipped model and its per-problem scaling
models (fitted from the shipped profiles' sample-level records)."""

from __future__ import annotations

import json

import pytest

from planner.cli.main import main
from planner.predict.modelio import DEFAULT_MODEL, load_model, load_scaling


def run(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out, err = capsys.readouterr()
    assert exc.value.code == 0, err
    return json.loads(out)


def test_shipped_model_lists_its_scaling_sets():
    doc = load_scaling(DEFAULT_MODEL, load_model(DEFAULT_MODEL)[1])
    sets = {(e["policy"], e["dataset"]) for e in doc["sets"]}
    assert {
        ("google/gemma-3-270m", "arith"),
        ("Qwen/Qwen2.5-Coder-0.5B-Instruct", "arith"),
        ("HuggingFaceTB/SmolLM2-135M-Instruct", "arith"),
        ("Qwen/Qwen2.5-Coder-0.5B-Instruct", "math500"),
        ("unstated", "math100"),
    } <= sets
    art = {e["policy"] for e in doc["sets"] if e["source"].startswith("art_of_tts/")}
    assert len(sets) == 30 and len(art) == 8  # eight reasoning models of art_of_tts, 25 sets
    r1 = next(e for e in doc["sets"] if (e["policy"], e["dataset"]) == ("deepseek-ai/DeepSeek-R1", "aime24"))
    assert r1["samples_per_problem"] == 8 and r1["problems"] == 30


def test_imported_reasoning_model_extrapolates_majority_past_its_samples(capsys):
    """DeepSeek-R1 on AIME 2024 (art_of_tts, 8 samples per problem): majority@8 is the fitted
    curve inside the samples, majority@64 an extrapolation of it, not a regressor guess."""
    base = ["predict", "--policy", "deepseek-ai/DeepSeek-R1", "--dataset", "aime24", "--method", "majority"]
    at8, at64 = (run([*base, "--n", n, "--json"], capsys) for n in ("8", "64"))
    assert at8["in_calibrated_range"] and not at8["extrapolated"]
    assert at64["in_calibrated_range"] and at64["extrapolated"]
    assert abs(at8["predicted_accuracy"] - 0.85) < 0.05  # the replay of the same samples: 85.0%
    assert at8["predicted_accuracy"] - 0.03 <= at64["predicted_accuracy"] < 1


@pytest.mark.parametrize("predictor", ["scaling", "regressor"])
@pytest.mark.parametrize(
    "policy, dataset",
    [
        ("gemma-3-270m", "arith"),
        ("Qwen2.5-1.5B-Instruct", "math500"),  # uncalibrated
        ("Qwen2.5-Coder-0.5B-Instruct", "math500"),
    ],
)
def test_predict_n1_same_for_every_sampling_method(policy, dataset, predictor, capsys):
    """One sample is one answer: majority@1 and every Best-of-N@1 are one prediction, interval
    and range, with the default regressor too (it gave Best-of-N@1 61% and majority@1 51% for
    Qwen2.5-1.5B on MATH-500)."""
    base = [
        "predict",
        "--policy",
        policy,
        "--dataset",
        dataset,
        "--n",
        "1",
        "--predictor",
        predictor,
        "--json",
    ]
    answers = [run([*base, "--method", "majority"], capsys)]
    for prm, agg, sel in (
        ("arith-check", "last", "max"),
        ("Qwen2.5-Math-PRM-7B", "min", "vote"),
        ("Qwen2.5-Math-PRM-72B", "mean", "max"),
    ):
        argv = [*base, "--method", "best_of_n", "--prm", prm, "--aggregation", agg, "--selection", sel]
        answers.append(run(argv, capsys))
    got = {(a["predicted_accuracy"], *a["accuracy_interval"], a["in_calibrated_range"]) for a in answers}
    assert len(got) == 1, answers
    assert all(a["model"]["predictor"] == predictor for a in answers)
    cot = run([*base, "--method", "cot"], capsys)  # greedy decoding: its own prediction
    assert cot["method"] == "cot" and 0 <= cot["predicted_accuracy"] <= 1
    if predictor == "scaling" and policy != "Qwen2.5-1.5B-Instruct":  # calibrated: the per-problem model
        assert all(a["in_calibrated_range"] and not a["extrapolated"] for a in answers)


def test_gemma_arith_plan_keeps_to_measured_cells(capsys):
    """Without --prm a 72B PRM out of the calibrated range must not beat measured in-range cells."""
    argv = ["plan", "--policy", "gemma-3-270m", "--dataset", "arith", "--budget-n", "8", "--json"]
    for predictor in ("scaling", None):  # None: the default
        plan = run([*argv, *(["--predictor", predictor] if predictor else [])], capsys)
        assert plan["in_calibrated_range"] is True, (predictor, plan)
        assert "72B" not in plan["prm"]
        # a verifier that scored Gemma's samples, not a guess about another
        assert plan["prm"] in ("none", "arith-check", "lm-judge:google/gemma-3-270m"), plan
        assert plan["ranking"]["rule"].startswith("ranked by predicted accuracy")
    # the regressor alone (the baseline) does pick Qwen2.5-Math-PRM-72B here since the published PRM
    # tables gave it cells of that PRM: its range check takes them for Gemma's range
    plan = run([*argv, "--predictor", "regressor"], capsys)
    assert plan["ranking"]["rule"].startswith("ranked by predicted accuracy")


def test_fit_refuses_bad_samples_in_one_line_and_writes_nothing(tmp_path, capsys):
    """K = 1 sample per problem (or a NaN score): one line, exit code 2, no model file written."""
    from planner.core.profiles import write_profile
    from tests.plan_helpers import POLICIES, records

    folder = tmp_path / "synthetic"
    meta = {"name": "synthetic", "description": "d", "kind": "measured", "sources": ["t"], "assumptions": []}
    write_profile(folder, records(policies=POLICIES[:2]), meta)
    out = tmp_path / "m.joblib"
    rows = "policy,dataset,problem_id,correct,answer,score:v:last\n"
    for bad, pattern in (
        ("p,math500,a,1,4,0.5\np,math500,b,0,5,0.2\n", "at least 2 samples"),
        (
            "p,math500,a,1,4,0.5\np,math500,a,0,5,\np,math500,b,1,4,0.1\np,math500,b,0,3,0.2\n",
            "no finite score",
        ),
    ):
        (folder / "samples.csv").write_text(rows + bad)
        with pytest.raises(SystemExit) as exc:
            main(["fit", "--profiles", str(folder), "--out", str(out)])
        err = capsys.readouterr().err.strip().splitlines()
        assert exc.value.code == 2 and len(err) == 1 and pattern in err[0], err
        assert not list(tmp_path.glob("m.joblib*"))


def test_predict_refuses_n_past_the_per_problem_models_reach(capsys):
    """N above 1,024 is past what the per-problem model predicts: one line, exit 2, for a
    calibrated and an uncalibrated policy alike; the regressor alone still guesses it, marked
    out of range, and N = 1,024 is an extrapolated prediction."""
    for policy, dataset in (("gemma-3-270m", "arith"), ("Qwen2.5-1.5B-Instruct", "math500")):
        base = ["predict", "--policy", policy, "--dataset", dataset, "--method", "majority", "--json"]
        with pytest.raises(SystemExit) as exc:
            main([*base, "--n", "2048"])
        out = capsys.readouterr()
        assert exc.value.code == 2 and out.out == "" and out.err.count("\n") == 1
        assert out.err.startswith("error: --n: 2048 is above 1024")
        guess = run([*base, "--n", "2048", "--predictor", "regressor"], capsys)
        assert guess["in_calibrated_range"] is False
    at_max = run(
        [
            "predict",
            "--policy",
            "gemma-3-270m",
            "--dataset",
            "arith",
            "--method",
            "majority",
            "--n",
            "1024",
            "--json",
        ],
        capsys,
    )
    assert at_max["extrapolated"] is True and 0 < at_max["predicted_accuracy"] < 1
