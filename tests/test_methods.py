"""TTS methods on the deterministic fake engine/verifier: control flow, batching, arithmetic, accounting."""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import replace

import pytest

from planner.core.config import MethodConfig
from planner.core.errors import UserError
from planner.core.scoring import aggregate, answer_key
from planner.core.vocab import STEP_DELIMITER
from planner.executor.base import Completion, Generation, SamplingOptions
from planner.executor.methods import RUNNERS
from planner.executor.methods.common import majority_vote, select, select_max, split_steps, weighted_vote
from tests.fake_engine import FakeEngine, FakeVerifier, count_tokens

QUESTIONS = ["What is 1 + 1?", "Compute 2 + 1.", "How many legs has a cat?", "Compute 9 - 6."]
BOXED = re.compile(r"\\boxed\{([^}]*)\}")


def p_values(text: str) -> list[float]:
    """The fake verifier's rule, re-read independently: one p=... per step."""
    return [float(x) for x in re.findall(r"p=([0-9.]+)", text)]


def boxed(text: str) -> str:
    found = BOXED.findall(text)
    return found[-1] if found else ""


def run(method: str, n: int, engine=None, verifier=None, questions=QUESTIONS, **kw):
    engine = engine or FakeEngine()
    verifier = verifier or FakeVerifier()
    config = MethodConfig(method, n, **kw)
    return RUNNERS[method](engine, verifier, questions, config), engine, verifier


# ---------------------------------------------------------------- config


@pytest.mark.parametrize(
    "kwargs, field",
    [
        (dict(method="sampling", n=4), "method"),
        (dict(method="majority", n=0), "n"),
        (dict(method="majority", n=2.5), "n"),
        (dict(method="cot", n=4), "n"),
        (dict(method="beam", n=6, beam_width=4), "n"),  # not divisible
        (dict(method="dvts", n=2, beam_width=4), "n"),  # n < M
        (dict(method="beam", n=8, beam_width=0), "beam_width"),
        (dict(method="best_of_n", n=4, aggregation="max"), "aggregation"),
        (dict(method="best_of_n", n=4, aggregation="none"), "aggregation"),
        (dict(method="best_of_n", n=4, selection="first"), "selection"),
        (dict(method="majority", n=4, temperature=-0.1), "temperature"),
        (dict(method="majority", n=4, top_p=0.0), "top_p"),
        (dict(method="beam", n=4, max_steps=0), "max_steps"),
        (dict(method="beam", n=4, max_step_tokens=0), "max_step_tokens"),
        (dict(method="beam", n=4, max_total_tokens=-5), "max_total_tokens"),
        (dict(method="majority", n=4, seed=-1), "seed"),
    ],
)
def test_config_errors_name_the_field(kwargs, field):
    with pytest.raises(UserError) as err:
        MethodConfig(**kwargs)
    message = str(err.value)
    assert message.startswith(f"{field}:") and "\n" not in message


def test_config_defaults_are_the_paper_settings():
    c = MethodConfig("beam", 16)
    assert (c.beam_width, c.temperature, c.top_p, c.max_steps, c.max_step_tokens, c.max_total_tokens) == (
        4,
        0.7,
        1.0,
        40,
        2048,
        8192,
    )
    # cot and majority accept the "none" the plan prints for them
    assert MethodConfig("majority", 8, aggregation="none", selection="none").n == 8


# ---------------------------------------------------------------- arithmetic


def test_aggregate_by_hand():
    s = [0.9, 0.5, 0.8]
    assert aggregate(s, "last") == 0.8
    assert aggregate(s, "min") == 0.5
    assert aggregate(s, "mean") == pytest.approx(2.2 / 3)
    assert aggregate(s, "prod") == pytest.approx(0.36)
    assert aggregate([], "mean") == 0.0
    with pytest.raises(UserError, match="aggregation"):
        aggregate(s, "median")


def test_selection_by_hand():
    assert select_max([0.2, 0.9, 0.9, 0.1]) == 1  # tie -> earliest
    assert select_max([]) == -1
    answers = ["1", "2", "2", "1", "3"]
    weights = [0.9, 0.3, 0.4, 0.1, 0.95]
    # totals: "1" 1.0, "2" 0.7, "3" 0.95 -> "1"; its best member is index 0
    assert weighted_vote(answers, weights) == 0
    # max alone picks the single best solution, "3"
    assert select(answers, weights, "max") == 4
    assert select(answers, weights, "vote") == 0
    assert weighted_vote(["a", "b"], [0.5, 0.5]) == 0  # equal totals -> answer seen first
    assert weighted_vote(["a", "b", "b"], [0.1, 0.05, 0.2]) == 2  # "b" wins; its best member
    assert majority_vote(["2", "1", "1", "2"]) == 0  # 2-2 tie -> "2", seen first
    assert majority_vote(["", "", "5"]) == 2  # no-answer samples do not vote
    assert majority_vote(["", ""]) == -1
    assert select(["", ""], [0.1, 0.7], "vote") == 1  # nothing to vote on -> best score
    assert majority_vote(["1,000", "7", "1000.0"]) == 0  # same number, different spelling


def test_answer_key_and_steps():
    assert answer_key("1,000") == answer_key("1000.0") == "1000"
    assert answer_key(r"\left( 3, \frac{\pi}{2} \right)") == answer_key(r"(3,\frac{\pi}{2})")
    assert answer_key("x+1") != answer_key("x-1")
    assert split_steps("a\n\nb\n\n\n\n c \n\n") == ["a", "b", "c"]


# ---------------------------------------------------------------- cot, majority, best-of-n


def test_cot_is_one_greedy_call_for_the_batch():
    results, engine, verifier = run("cot", 1)
    assert len(engine.calls) == 1 and not verifier.calls
    prompts, options = engine.calls[0]
    assert len(prompts) == len(QUESTIONS)
    assert options.temperature == 0.0 and options.n == 1 and options.stop == ()
    again, _, _ = run("cot", 1, seed=7)
    assert [r.text for r in again] == [r.text for r in results]  # greedy: the seed does not matter
    for q, r in zip(QUESTIONS, results, strict=True):
        assert r.answer == boxed(r.text) != ""
        assert r.policy_generated_tokens == count_tokens(r.text)
        assert r.policy_prompt_tokens == count_tokens(FakeEngine().format_prompt(q))


def test_majority_votes_over_samples():
    results, engine, verifier = run("majority", 8)
    assert len(engine.calls) == 1 and engine.calls[0][1].n == 8 and not verifier.calls
    for r in results:
        answers = [c["answer"] for c in r.candidates]
        assert len(answers) == 8 and answers == [boxed(c["text"]) for c in r.candidates]
        counts = Counter(answers)
        top = max(counts.values())
        expected = next(a for a in answers if counts[a] == top)  # ties: first sampled
        assert r.answer == expected
        assert r.policy_generated_tokens == sum(count_tokens(c["text"]) for c in r.candidates)


@pytest.mark.parametrize("aggregation", ["last", "min", "mean", "prod"])
def test_best_of_n_scores_and_selects(aggregation):
    results, engine, verifier = run("best_of_n", 4, aggregation=aggregation)
    assert len(engine.calls) == 1
    assert verifier.calls == [4 * len(QUESTIONS)]  # one verifier call for every solution of every problem
    ops = {"last": lambda s: s[-1], "min": min, "mean": lambda s: sum(s) / len(s), "prod": math.prod}
    for r in results:
        scores = [ops[aggregation](p_values(c["text"])) for c in r.candidates]
        assert [c["score"] for c in r.candidates] == pytest.approx(scores)
        best = max(range(4), key=lambda i: (scores[i], -i))
        assert r.text == r.candidates[best]["text"] and r.answer == boxed(r.text)


def test_best_of_n_weighted_vote():
    results, _, _ = run("best_of_n", 8, selection="vote", aggregation="mean")
    for r in results:
        totals: dict[str, float] = {}
        for c in r.candidates:
            totals[c["answer"]] = totals.get(c["answer"], 0.0) + sum(p_values(c["text"])) / len(
                p_values(c["text"])
            )
        assert totals[r.answer] == pytest.approx(max(totals.values()))


def test_verifier_methods_need_a_verifier():
    engine = FakeEngine()
    for method in ("best_of_n", "beam", "dvts"):
        with pytest.raises(UserError, match="verifier"):
            RUNNERS[method](engine, None, QUESTIONS, MethodConfig(method, 4))


# ---------------------------------------------------------------- beam search


def regenerate(prompt: str, options: SamplingOptions, index: int = 0) -> list[str]:
    """What the fake engine returned for prompt `index` of a call (a pure function of prompt and seed)."""
    fresh = FakeEngine()
    if options.seeds is not None:
        options = replace(options, seed=options.seeds[index], seeds=None)
    return [fresh.complete(prompt, options, j).text for j in range(options.n)]


def is_finished(step_text: str) -> bool:
    return "boxed" in step_text or not step_text.endswith(STEP_DELIMITER)


def test_beam_keeps_n_over_m_and_expands_m():
    n, m = 8, 2
    engine = FakeEngine(max_len=5)
    results, engine, verifier = run("beam", n, engine=engine, beam_width=m, aggregation="last")
    first_prompts, first = engine.calls[0]
    assert len(first_prompts) == len(QUESTIONS) and first.n == n and first.stop == (STEP_DELIMITER,)
    # expected survivors after step 0, computed here from the fake's outputs and the "last" rule
    expected_next = []
    finished_after_first = {}
    for i, prompt in enumerate(first_prompts):
        children = regenerate(prompt, first, i)
        ranked = sorted(children, key=lambda t: -p_values(t)[-1])[: n // m]
        finished_after_first[prompt] = [t for t in ranked if is_finished(t)]
        expected_next += [prompt + t for t in ranked if not is_finished(t)]
    second_prompts, second = engine.calls[1]
    assert second_prompts == expected_next
    assert second.n == m
    assert all(options.n == m for _, options in engine.calls[1:])
    for r in results:
        assert len(r.candidates) == n // m  # the final pool holds n/M beams
        assert all(c["finished"] for c in r.candidates)
        assert r.answer == boxed(r.text)
        assert r.answer in [c["answer"] for c in r.candidates]
    # finished beams stay in the pool and are not expanded: no later prompt extends a final beam,
    # and some problem ends with beams finished at different steps
    prompts = [p for ps, _ in engine.calls for p in ps]
    lengths = []
    for q, r in zip(QUESTIONS, results, strict=True):
        head = FakeEngine().format_prompt(q)
        for c in r.candidates:
            assert not any(p.startswith(head + c["text"]) for p in prompts)
        lengths.append({len(split_steps(c["text"])) for c in r.candidates})
    assert any(len(steps) > 1 for steps in lengths)


def test_beam_batches_across_problems():
    questions = [f"Problem number {i}" for i in range(6)]
    results, engine, verifier = run("beam", 8, questions=questions, beam_width=4)
    # one generate call and one verifier call per step, whatever the number of problems
    assert len(engine.calls) == max(r.steps_taken for r in results)
    assert len(verifier.calls) == len(engine.calls)
    assert len(engine.calls[0][0]) == len(questions)
    singles = [run("beam", 8, questions=[q], beam_width=4)[1] for q in questions]
    assert len(engine.calls) == max(len(e.calls) for e in singles) < sum(len(e.calls) for e in singles)


def test_beam_step_limit_generates_to_the_end():
    results, engine, _ = run("beam", 4, engine=FakeEngine(max_len=6), beam_width=2, max_steps=2)
    assert len(engine.calls) == 2  # the fake never ends a solution at its first step
    assert engine.calls[0][1].stop == (STEP_DELIMITER,)
    assert engine.calls[1][1].stop == ()  # the last allowed step writes to the end
    for r in results:
        assert r.steps_taken <= 2 and len(r.candidates) == 2
        assert all(c["finished"] and c["answer"] for c in r.candidates)


@pytest.mark.parametrize("method", ["beam", "dvts"])
def test_token_budget(method):
    # the fake's steps are 5 words (7 for the last): a step fits in 6 tokens, 12 hold two steps
    results, engine, _ = run(
        method, 4, engine=FakeEngine(max_len=6), beam_width=2, max_step_tokens=6, max_total_tokens=12
    )
    assert all(o.max_tokens <= 6 for _, o in engine.calls)
    assert len(engine.calls) == max(r.steps_taken for r in results)  # still one call per step
    for r in results:
        for c in r.candidates:
            # finished by the budget at the latest in the call that crossed it
            assert count_tokens(c["text"]) <= 12 - 1 + 6 and c["finished"]
    lengths = [count_tokens(c["text"]) for r in results for c in r.candidates]
    assert max(lengths) >= 12  # the budget, not the fake's own ending, stopped some beams


# ---------------------------------------------------------------- dvts


def test_dvts_subtrees_keep_their_best():
    n, m = 8, 2
    results, engine, verifier = run("dvts", n, engine=FakeEngine(max_len=5), beam_width=m, aggregation="min")
    first_prompts, first = engine.calls[0]
    assert len(first_prompts) == len(QUESTIONS) * (n // m) and first.n == m
    expected_next = []
    for i, prompt in enumerate(first_prompts):
        children = regenerate(prompt, first, i)
        best = max(children, key=lambda t: min(p_values(t)))  # "min" aggregation; ties -> first
        best = next(t for t in children if min(p_values(t)) == min(p_values(best)))
        if not is_finished(best):
            expected_next.append(prompt + best)
    assert engine.calls[1][0] == expected_next
    assert all(o.n == m for _, o in engine.calls)
    for r in results:
        assert len(r.candidates) == n // m  # one per subtree, every subtree's answer kept
        assert sorted(c["group"] for c in r.candidates) == list(range(n // m))
        best = max(range(n // m), key=lambda i: (r.candidates[i]["score"], -i))
        assert r.text == r.candidates[best]["text"]
        for c in r.candidates:
            assert c["score"] == pytest.approx(min(p_values(c["text"])))


def test_dvts_batches_across_problems():
    questions = [f"Problem number {i}" for i in range(5)]
    results, engine, verifier = run("dvts", 8, questions=questions, beam_width=4)
    assert len(engine.calls) == max(r.steps_taken for r in results) == len(verifier.calls)


# ---------------------------------------------------------------- accounting and seeds


class CountingVerifier(FakeVerifier):
    def __init__(self):
        super().__init__()
        self.tokens = 0

    def score(self, problems, solutions):
        out = super().score(problems, solutions)
        self.tokens += sum(s.tokens_scored for s in out)
        return out


@pytest.mark.parametrize(
    "method, n", [("cot", 1), ("majority", 4), ("best_of_n", 4), ("beam", 8), ("dvts", 8)]
)
def test_token_accounting_sums(method, n):
    verifier = CountingVerifier()
    results, engine, _ = run(method, n, verifier=verifier, beam_width=2)
    prompt_total = sum(count_tokens(p) for prompts, _ in engine.calls for p in prompts)
    generated_total = sum(
        count_tokens(t)
        for prompts, options in engine.calls
        for i, p in enumerate(prompts)
        for t in regenerate(p, options, i)
    )
    assert sum(r.policy_prompt_tokens for r in results) == prompt_total
    assert sum(r.policy_generated_tokens for r in results) == generated_total
    assert sum(r.prm_tokens for r in results) == verifier.tokens
    assert all(r.policy_generated_tokens > 0 for r in results)
    assert all(0 <= r.cached_prompt_tokens <= r.policy_prompt_tokens for r in results)
    completions = sum(len(generated) for r in results for _, _, generated in r.calls)
    assert completions == sum(len(prompts) * options.n for prompts, options in engine.calls)
    if method in ("beam", "dvts"):
        # later steps re-send the problem's own earlier prefix: the fake's prefix cache reports hits
        assert all(r.cached_prompt_tokens > 0 for r in results if r.steps_taken > 1)


@pytest.mark.parametrize("method, n", [("majority", 4), ("best_of_n", 4), ("beam", 8), ("dvts", 8)])
def test_seeded_and_reproducible(method, n):
    a, _, _ = run(method, n, beam_width=2, seed=3)
    b, _, _ = run(method, n, beam_width=2, seed=3)
    c, _, _ = run(method, n, beam_width=2, seed=4)
    assert [r.candidates for r in a] == [r.candidates for r in b]
    assert [r.candidates for r in a] != [r.candidates for r in c]


# ---------------------------------------------------------------- faithful to the references


class ScriptedEngine:
    """Orchestration fake: the k-th step of every solution is script[k] (the last one ends with EOS)."""

    name = "scripted"

    def __init__(self, script: list[str]) -> None:
        self.script = script
        self.calls: list[tuple[list[str], SamplingOptions]] = []

    def format_prompt(self, problem: str) -> str:
        return f"Q: {problem}\nA:"

    def generate(self, prompts: list[str], options: SamplingOptions) -> list[Generation]:
        self.calls.append((list(prompts), options))
        out = []
        for prompt in prompts:
            k = prompt.split("A:", 1)[1].count(STEP_DELIMITER)
            text = self.script[min(k, len(self.script) - 1)]
            eos = k >= len(self.script) - 1
            c = Completion(text, len(text.split()) or 1, "stop", stopped_on_eos=eos)
            out.append(Generation([c] * options.n, len(prompt.split())))
        return out


@pytest.mark.parametrize("method", ["beam", "dvts"])
def test_tree_search_stops_only_on_a_boxed_answer(method):
    # "the answer is 7" and a "####" heading used to end the beam with a junk answer
    script = ["#### Step 1: the answer is 7\n\n", "Answer: 9\n\n", "So 4 + 4 = 8, \\boxed{8}"]
    results, engine, _ = run(method, 4, engine=ScriptedEngine(script), beam_width=2, max_steps=10)
    assert len(engine.calls) == 3
    for r in results:
        assert r.answer == "8" and all(c["answer"] == "8" and c["finished"] for c in r.candidates)


@pytest.mark.parametrize("method", ["beam", "dvts"])
def test_tree_search_keeps_a_blank_step(method):
    script = ["\n\n", "2 + 1 = 3.\n\n", "\\boxed{3}"]
    results, engine, _ = run(method, 4, engine=ScriptedEngine(script), beam_width=2, max_steps=10)
    assert len(engine.calls) == 3  # the blank step did not end the beams
    assert all(r.answer == "3" and r.text.startswith("\n\n") for r in results)


def test_selection_drops_unanswered_candidates():
    assert select(["", "5", "6"], [0.9, 0.1, 0.2], "max") == 2  # the unanswered 0.9 is dropped
    assert select(["", ""], [0.1, 0.7], "max") == 1  # nothing answered: the best score
    assert select(["", "5"], [0.9, 0.1], "vote") == 1


@pytest.mark.parametrize("method", ["beam", "dvts"])
def test_sibling_beams_get_their_own_seeds(method):
    results, engine, _ = run(method, 16, engine=FakeEngine(max_len=5), beam_width=4)
    for prompts, options in engine.calls:
        assert options.seeds is not None and len(options.seeds) == len(prompts)
        seeds = [s + j for s in options.seeds for j in range(options.n)]
        assert len(set(seeds)) == len(seeds)  # no two children of a step share a seed
    # identical prompts (dvts subtrees at their first step) no longer sample alike
    first = [c["text"] for c in results[0].candidates]
    assert len(set(first)) > 1


def test_answer_key_keeps_lists_apart():
    assert answer_key("1,2") != answer_key("12")
    assert answer_key("1, 2") == answer_key("1,2")
    assert answer_key("12,345") == answer_key("12345") == "12345"
    assert answer_key("-1,000.50") == answer_key("-1000.5")
    assert majority_vote(["1,2", "12", "12"]) == 1


def test_r1_distilled_policies_sample_with_their_family_settings():
    from calibration.grid import Grid
    from calibration.steps import sampling
    from planner.core.planfile import plan_from_dict, plan_from_options

    r1 = "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    plan = plan_from_options(r1, "majority", 8)
    assert (plan.config.temperature, plan.config.top_p, plan.config.max_total_tokens) == (0.6, 0.95, 32768)
    plan = plan_from_dict({"policy": r1, "method": "cot", "n": 1})
    assert plan.config.max_total_tokens == 32768
    other = plan_from_options("Qwen/Qwen2.5-7B-Instruct", "majority", 8).config
    assert (other.temperature, other.top_p, other.max_total_tokens) == (0.7, 1.0, 8192)
    assert sampling(Grid(name="g", dataset="arith"), r1) == {
        "temperature": 0.6,
        "top_p": 0.95,
        "max_total_tokens": 32768,
    }
    assert sampling(Grid(name="g", dataset="arith", temperature=0.8), r1)["temperature"] == 0.8
