"""Verifiers: PRM formats and parsing on tiny random models, the LM judge, the arith checker.

The PRMs' real weights are not available here; each adapter runs on a tiny randomly
initialised model of the same architecture with a small byte-level BPE tokenizer trained
in the test (plus the special tokens each format needs). Expected values are computed the
way the published reference code does it (one sequence at a time, ids found by equality).
"""

from __future__ import annotations

import math

import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import (
    LlamaConfig,
    LlamaForCausalLM,
    MistralConfig,
    MistralForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
)

from planner.core.datasets import arith_problems
from planner.core.errors import UserError
from planner.executor.base import StepScores, Verifier
from planner.executor.verifiers import ArithStepChecker, make_verifier
from planner.executor.verifiers.arith_check import check_step, find_equations
from planner.executor.verifiers.lm_judge import LMJudgeVerifier
from planner.executor.verifiers.prm import load_prm
from planner.executor.verifiers.prm_formats import (
    MathShepherdPRM,
    Qwen2ForPrmModel,
    Qwen2ForProcessRewardModel,
    QwenMathPRM,
    RLHFlowPRM,
    SkyworkPRM,
)

PROBLEM = "What is 2 + 3 * 4?"
STEPS = ["3 * 4 = 12", "2 + 12 = 14"]
# Three solutions of different lengths (and one without steps) for batching checks.
BATCH_PROBLEMS = [PROBLEM, "Compute 7 - 5.", PROBLEM, "Compute 9 * 9."]
BATCH_SOLUTIONS = [STEPS, ["7 - 5 = 2", "The answer is 2."], [], ["9 * 9 = 81", "81 + 0 = 81", "So 81."]]

LLAMA3_TEMPLATE = (  # Llama 3 chat layout, without the default system turn of 3.1
    "{{ bos_token }}{% for m in messages %}<|start_header_id|>{{ m['role'] }}<|end_header_id|>\n\n"
    "{{ m['content'] | trim }}<|eot_id|>{% endfor %}"
    "{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)
CHATML_TEMPLATE = (  # Qwen2.5's ChatML layout
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
SPECIALS = [
    "<pad>", "<s>", "</s>", "<extra_0>", "<|im_start|>", "<|im_end|>",
    "<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>",
]  # fmt: skip


@pytest.fixture(scope="module")
def tokenizer() -> PreTrainedTokenizerFast:
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=SPECIALS
    )
    corpus = [
        PROBLEM,
        *STEPS,
        "Is this step correct? Answer: Yes No",
        "Compute 9 * 9 - 7 + 5.",
        "The answer is",
    ]
    tok.train_from_iterator(corpus * 4, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    fast.add_tokens(["ки"])  # a plain vocabulary token, as in Mistral's vocabulary
    return fast


def _tokenizer_with(base: PreTrainedTokenizerFast, template: str, bos: str) -> PreTrainedTokenizerFast:
    tok = PreTrainedTokenizerFast(
        tokenizer_object=base.backend_tokenizer, bos_token=bos, eos_token="</s>", pad_token="<pad>"
    )
    tok.chat_template = template
    return tok


def _tiny(config_cls, vocab: int):
    torch.manual_seed(0)
    return config_cls(
        vocab_size=vocab, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
    )  # fmt: skip


@pytest.fixture(scope="module")
def shepherd(tokenizer) -> MathShepherdPRM:
    model = MistralForCausalLM(_tiny(MistralConfig, len(tokenizer)))
    return MathShepherdPRM(model, tokenizer, name="tiny-math-shepherd")


@pytest.fixture(scope="module")
def rlhflow(tokenizer) -> RLHFlowPRM:
    tok = _tokenizer_with(tokenizer, LLAMA3_TEMPLATE, "<|begin_of_text|>")
    model = LlamaForCausalLM(_tiny(LlamaConfig, len(tok)))
    return RLHFlowPRM(model, tok, name="tiny-rlhflow")


@pytest.fixture(scope="module")
def skywork(tokenizer) -> SkyworkPRM:
    model = Qwen2ForPrmModel(_tiny(Qwen2Config, len(tokenizer)))
    return SkyworkPRM(model, tokenizer, name="tiny-skywork")


@pytest.fixture(scope="module")
def qwen_prm(tokenizer) -> QwenMathPRM:
    tok = _tokenizer_with(tokenizer, CHATML_TEMPLATE, "<s>")
    model = Qwen2ForProcessRewardModel(_tiny(Qwen2Config, len(tok)))
    return QwenMathPRM(model, tok, name="tiny-qwen-prm")


def _ids(tok, text: str, special: bool = False) -> list[int]:
    return list(tok(text, add_special_tokens=special)["input_ids"])


# ---------------------------------------------------------------- Math-Shepherd


def test_math_shepherd_format(shepherd):
    text, _ = shepherd.format_text(PROBLEM, STEPS)
    assert text == "What is 2 + 3 * 4? 3 * 4 = 12 ки\n2 + 12 = 14 ки"
    ids, positions = shepherd.format(PROBLEM, STEPS)
    tag = shepherd.tokenizer.convert_tokens_to_ids("ки")
    assert positions == [
        i for i, t in enumerate(ids) if t == tag
    ]  # the card's rule: input_ids == step_tag_id
    assert len(positions) == 2
    assert shepherd.candidates == _ids(shepherd.tokenizer, "+ -")  # the card: encode("+ -") less BOS


def test_math_shepherd_reserved_tag_is_removed(shepherd):
    text, marks = shepherd.format_text("ки" + PROBLEM, ["a ки b", "c"])
    assert text.count("ки") == 2 and len(marks) == 2


def test_math_shepherd_probabilities_match_the_card(shepherd):
    [scores] = shepherd.score([PROBLEM], [STEPS])
    ids, _ = shepherd.format(PROBLEM, STEPS)
    tag = shepherd.tokenizer.convert_tokens_to_ids("ки")
    with torch.no_grad():
        logits = shepherd.model(torch.tensor([ids])).logits[0][:, shepherd.candidates]
    expected = logits.softmax(-1)[:, 0][torch.tensor(ids) == tag].tolist()
    assert scores.steps == pytest.approx(expected, abs=1e-6)
    assert scores.tokens_scored == len(ids)


# ---------------------------------------------------------------- RLHFlow


def test_rlhflow_format(rlhflow):
    text, marks = rlhflow.format_text(PROBLEM, STEPS)
    turn = "<|start_header_id|>{}<|end_header_id|>\n\n{}<|eot_id|>"
    assert text == "<|begin_of_text|>" + "".join(
        [turn.format("user", PROBLEM + " " + STEPS[0]), turn.format("assistant", "+"),
         turn.format("user", STEPS[1]), turn.format("assistant", "+")]
    )  # fmt: skip
    assert [text[m] for m in marks] == ["+", "+"]
    ids, positions = rlhflow.format(PROBLEM, STEPS)
    plus = rlhflow.candidates[0]
    assert [ids[p + 1] for p in positions] == [plus, plus]  # read just before each assistant "+"


def test_rlhflow_probabilities_match_reference(rlhflow):
    """The reference scores step k on the chat cut after step k's "+" turn, at index -3."""
    [scores] = rlhflow.score([PROBLEM], [STEPS])
    chat = rlhflow.conversation(PROBLEM, STEPS)
    expected = []
    for k in range(len(STEPS)):
        text = rlhflow.tokenizer.apply_chat_template(chat[: 2 * k + 2], tokenize=False)
        ids = _ids(rlhflow.tokenizer, text)
        with torch.no_grad():
            logits = rlhflow.model(torch.tensor([ids])).logits[0, -3, rlhflow.candidates]
        expected.append(logits.softmax(-1)[0].item())
    assert scores.steps == pytest.approx(expected, abs=1e-5)


# ---------------------------------------------------------------- Skywork


def test_skywork_format(skywork):
    tok = skywork.tokenizer
    ids, positions = skywork.format(PROBLEM, STEPS)
    assert tok.decode(ids) == "<s>" + PROBLEM + "\n" + STEPS[0] + "\n" + STEPS[1] + "\n"
    newline = _ids(tok, "\n")[-1]
    head = len(_ids(tok, "<s>" + PROBLEM + "\n"))
    first = head + len(_ids(tok, STEPS[0]))
    assert positions == [first, first + 1 + len(_ids(tok, STEPS[1]))]
    assert [ids[p] for p in positions] == [newline, newline]


def test_skywork_probabilities_are_sigmoid_of_value_head(skywork):
    [scores] = skywork.score([PROBLEM], [STEPS])
    ids, positions = skywork.format(PROBLEM, STEPS)
    model = skywork.model
    with torch.no_grad():
        hidden = model.model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        value = hidden @ model.v_head.summary.weight[0] + model.v_head.summary.bias[0]
    expected = [1 / (1 + math.exp(-value[p].item())) for p in positions]
    assert scores.steps == pytest.approx(expected, abs=1e-6)


# ---------------------------------------------------------------- Qwen2.5-Math-PRM


def test_qwen_prm_format(qwen_prm):
    text, _ = qwen_prm.format_text(PROBLEM, STEPS)
    assert text == (
        "<|im_start|>system\nPlease reason step by step, and put your final answer within \\boxed{}.<|im_end|>\n"
        f"<|im_start|>user\n{PROBLEM}<|im_end|>\n"
        f"<|im_start|>assistant\n{STEPS[0]}<extra_0>{STEPS[1]}<extra_0><|im_end|>\n"
    )
    ids, positions = qwen_prm.format(PROBLEM, STEPS)
    tag = qwen_prm.tokenizer.convert_tokens_to_ids("<extra_0>")
    assert positions == [i for i, t in enumerate(ids) if t == tag]  # the card's token mask
    assert len(positions) == 2


def test_qwen_prm_probabilities_are_class_one_softmax(qwen_prm):
    [scores] = qwen_prm.score([PROBLEM], [STEPS])
    ids, positions = qwen_prm.format(PROBLEM, STEPS)
    model = qwen_prm.model
    with torch.no_grad():
        hidden = model.model(input_ids=torch.tensor([ids])).last_hidden_state[0]
        logits = model.score(hidden)
    expected = [torch.softmax(logits[p], -1)[1].item() for p in positions]
    assert scores.steps == pytest.approx(expected, abs=1e-6)


# ---------------------------------------------------------------- all adapters


@pytest.mark.parametrize("adapter", ["shepherd", "rlhflow", "skywork", "qwen_prm"])
def test_batched_equals_one_by_one(adapter, request):
    prm = request.getfixturevalue(adapter)
    assert isinstance(prm, Verifier)
    prm.batch_size = 8
    together = prm.score(BATCH_PROBLEMS, BATCH_SOLUTIONS)
    prm.batch_size = 1
    alone = [prm.score([p], [s])[0] for p, s in zip(BATCH_PROBLEMS, BATCH_SOLUTIONS, strict=True)]
    prm.batch_size = 8
    for got, want, steps in zip(together, alone, BATCH_SOLUTIONS, strict=True):
        assert len(got.steps) == len(steps)
        assert got.steps == pytest.approx(want.steps, abs=1e-5)
        assert got.tokens_scored == want.tokens_scored
        assert all(0.0 <= s <= 1.0 for s in got.steps)
    assert together[2] == StepScores([], 0)


def test_load_prm_from_saved_folders(tmp_path, skywork, qwen_prm, shepherd):
    """Checkpoints saved in the published layouts load back through load_prm with the same scores."""
    cases = [
        (skywork, tmp_path / "value-head-prm", "skywork"),  # found by its architecture
        (qwen_prm, tmp_path / "prm-checkpoint", "qwen-prm"),  # found by its architecture
        (shepherd, tmp_path / "math-shepherd-mistral-7b-prm", "math-shepherd"),  # by its name
    ]
    for prm, folder, family in cases:
        prm.model.save_pretrained(folder)
        prm.tokenizer.save_pretrained(folder)
        loaded = load_prm(folder, dtype=torch.float32)
        assert loaded.family == family
        # transformers may reload the test tokenizer as the model type's own class (Qwen2's
        # pre-tokenizer differs from the test's), so score with the original one: this checks
        # that the weights land in the right places.
        loaded.tokenizer = prm.tokenizer
        got = loaded.score([PROBLEM], [STEPS])[0].steps
        assert got == pytest.approx(prm.score([PROBLEM], [STEPS])[0].steps, abs=1e-6)
    assert loaded.spec_name == "peiyi9979/math-shepherd-mistral-7b-prm"  # a known name: cost model spec
    assert make_verifier(f"skywork:{tmp_path / 'value-head-prm'}", dtype=torch.float32).family == "skywork"
    with pytest.raises(UserError, match="is not a skywork PRM checkpoint: it lacks v_head"):
        load_prm(tmp_path / "prm-checkpoint", family="skywork")
    shepherd.model.save_pretrained(tmp_path / "ckpt")
    with pytest.raises(UserError, match="cannot tell which PRM family"):
        load_prm(tmp_path / "ckpt")


def test_load_prm_without_weights_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(UserError, match=r"Qwen/Qwen2\.5-Math-PRM-7B.*no weights available offline"):
        load_prm("Qwen/Qwen2.5-Math-PRM-7B")
    with pytest.raises(UserError, match="no weights available offline"):
        make_verifier("RLHFlow/Llama3.1-8B-PRM-Deepseek-Data")
    with pytest.raises(UserError, match="unknown PRM 'my-prm'"):
        load_prm("my-prm")
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no weight files"):
        load_prm(tmp_path / "empty")


def test_make_verifier_names(tmp_path):
    assert isinstance(make_verifier("arith-check"), ArithStepChecker)
    with pytest.raises(UserError, match="unknown verifier 'nope'; choices: arith-check, lm-judge"):
        make_verifier("nope")
    with pytest.raises(UserError, match="non-empty"):
        make_verifier("  ")


# ---------------------------------------------------------------- arithmetic checker


def test_arith_checker_scores_right_wrong_and_unchecked_steps():
    checker = ArithStepChecker()
    solutions = [
        ["12 * 7 = 84", "84 + 16 = 100", "The answer is 100."],
        ["12×7=84", "84+16 = 110"],
        ["First 9 - 4 = 5 and then 5 x 3 = 16."],
        ["20 / 4 = 5", "21 / 4 = 5", "-3 + 5 = 2"],
    ]
    out = checker.score(["q"] * 4, solutions)
    assert [s.steps for s in out] == [[1.0, 1.0, 0.5], [1.0, 0.0], [0.0], [1.0, 0.0, 1.0]]
    assert all(s.tokens_scored == 0 for s in out)
    assert ArithStepChecker(neutral=1.0).score(["q"], [["no numbers"]])[0].steps == [1.0]


def test_arith_checker_reads_only_whole_equations():
    assert find_equations("2 + 3 * 4 = 14") == []  # a longer left side is not "3 * 4 = 14"
    assert find_equations("so 7 / 2 = 3.5") == []  # not an integer claim
    assert find_equations(r"$6 \times 7 = 42$.") == [(6, "\\times", 7, 42, True)]
    assert find_equations("3 * 4 = 12 + 1 = 13") == [(12, "+", 1, 13, True)]
    assert check_step("10 - 3 = 6, 2 + 2 = 4") == 0.0


def test_arith_checker_on_the_datasets_own_steps():
    problems = arith_problems(seed=0, per_level=20)
    steps = [s for p in problems for s in p.steps]
    assert len(steps) > 100
    checker = ArithStepChecker()
    assert checker.score(["q"], [steps])[0].steps == [1.0] * len(steps)
    # the same steps with the result off by one are all wrong
    broken = [s.rsplit("=", 1)[0] + "= " + str(int(s.rsplit("=", 1)[1]) + 1) for s in steps]
    assert checker.score(["q"], [broken])[0].steps == [0.0] * len(steps)


# ---------------------------------------------------------------- LM judge


@pytest.fixture(scope="module")
def tiny_judge(tokenizer) -> LMJudgeVerifier:
    model = LlamaForCausalLM(_tiny(LlamaConfig, len(tokenizer)))
    return LMJudgeVerifier.from_loaded(model, tokenizer, name="tiny-judge")


def test_lm_judge_format(tiny_judge):
    text = tiny_judge.format_text(PROBLEM, STEPS)
    assert text.endswith(
        f"Problem: {PROBLEM}\nStep 1: {STEPS[0]}\nIs this step correct? Answer:\n"
        f"Step 2: {STEPS[1]}\nIs this step correct? Answer:"
    )
    ids, positions = tiny_judge.format(PROBLEM, STEPS)
    assert tiny_judge.tokenizer.decode(ids) == text
    assert positions[-1] == len(ids) - 1
    upto_first = tiny_judge.tokenizer.decode(ids[: positions[0] + 1])
    assert upto_first.endswith(f"Step 1: {STEPS[0]}\nIs this step correct? Answer:")


def test_lm_judge_probabilities_match_manual_softmax(tiny_judge):
    [scores] = tiny_judge.score([PROBLEM], [STEPS])
    ids, positions = tiny_judge.format(PROBLEM, STEPS)
    yes = _ids(tiny_judge.tokenizer, "Answer: Yes")[-1]
    no = _ids(tiny_judge.tokenizer, "Answer: No")[-1]
    with torch.no_grad():
        logits = tiny_judge.model(torch.tensor([ids])).logits[0]
    expected = [torch.softmax(logits[p, [yes, no]], -1)[0].item() for p in positions]
    assert scores.steps == pytest.approx(expected, abs=1e-6)
    assert scores.tokens_scored == len(ids)


def test_lm_judge_batched_equals_one_by_one(tiny_judge):
    tiny_judge.batch_size = 8
    together = tiny_judge.score(BATCH_PROBLEMS, BATCH_SOLUTIONS)
    tiny_judge.batch_size = 1
    alone = [tiny_judge.score([p], [s])[0] for p, s in zip(BATCH_PROBLEMS, BATCH_SOLUTIONS, strict=True)]
    for got, want in zip(together, alone, strict=True):
        assert got.steps == pytest.approx(want.steps, abs=1e-5)
        assert got.tokens_scored == want.tokens_scored


def _arith_pairs(n: int) -> tuple[list[str], list[list[str]], list[list[str]], list[int]]:
    """n multi-step arith solutions, each with a copy whose step `k` has a wrong result."""
    problems, right, wrong, where = [], [], [], []
    for p in arith_problems(seed=3, per_level=n, levels=[3, 4])[:n]:
        k = len(p.steps) - 1
        head, value = p.steps[k].rsplit("=", 1)
        broken = list(p.steps)
        broken[k] = f"{head}= {int(value) + 10}"
        problems.append(p.question)
        right.append(list(p.steps))
        wrong.append(broken)
        where.append(k)
    return problems, right, wrong, where


@pytest.mark.model
def test_lm_judge_on_embedded_smollm2(capsys):
    judge = make_verifier("lm-judge", policy_model="HuggingFaceTB/SmolLM2-135M-Instruct", dtype=torch.float32)
    assert judge.spec_name == "HuggingFaceTB/SmolLM2-135M-Instruct"
    problems, right, wrong, where = _arith_pairs(8)
    good = judge.score(problems, right)
    bad = judge.score(problems, wrong)
    for scores, steps in zip(good + bad, right + wrong, strict=True):
        assert len(scores.steps) == len(steps)
        assert all(0.0 <= s <= 1.0 for s in scores.steps)
        assert scores.tokens_scored > 0
    again = judge.score(problems[:2], right[:2])  # deterministic up to batch-shape rounding
    for got, want in zip(again, good[:2], strict=True):
        assert got.steps == pytest.approx(want.steps, abs=1e-4)
    judge.batch_size = 1
    alone = judge.score(problems[:3], wrong[:3])
    for got, want in zip(bad[:3], alone, strict=True):
        assert got.steps == pytest.approx(want.steps, abs=1e-4)
    lower = sum(b.steps[k] < g.steps[k] for g, b, k in zip(good, bad, where, strict=True))
    with capsys.disabled():
        print(f"\nSmolLM2 judge: the wrong step scored lower in {lower}/{len(where)} pairs")


def test_prm_names_known_without_torch_match_the_adapters():
    from planner.executor.verifiers.prm_formats import FAMILIES
    from planner.executor.verifiers.prm_names import FAMILY_NAMES, KNOWN_PRMS

    assert set(FAMILY_NAMES) == set(FAMILIES)
    assert set(KNOWN_PRMS.values()) <= set(FAMILIES)


def test_logits_at_equal_the_full_output_layer(tokenizer):
    """The output layer at each row's own positions (and token columns) gives the full forward's
    logits there, also for Gemma's final logit soft-capping."""
    from transformers import Gemma3ForCausalLM, Gemma3TextConfig

    from planner.executor.verifiers.batching import logits_at, pad_right

    torch.manual_seed(0)
    gemma = Gemma3TextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=1, head_dim=8, max_position_embeddings=512,
        final_logit_softcapping=5.0,
    )  # fmt: skip
    for model in (LlamaForCausalLM(_tiny(LlamaConfig, len(tokenizer))), Gemma3ForCausalLM(gemma)):
        model.eval()
        seqs = [_ids(tokenizer, PROBLEM + STEPS[0]), _ids(tokenizer, STEPS[1])]
        ids, mask = pad_right(seqs, 0)
        positions = [[2, len(seqs[0]) - 1], [len(seqs[1]) - 1]]
        with torch.no_grad():
            full = model(input_ids=ids, attention_mask=mask).logits.float()
            got = logits_at(model, ids, mask, positions)
            picked = logits_at(model, ids, mask, positions, columns=[5, 9])
        for i, row in enumerate(positions):
            assert torch.allclose(got[i], full[i, row], atol=1e-5)
            assert torch.allclose(picked[i], full[i, row][:, [5, 9]], atol=1e-5)


def test_prefix_reuse_scores_equal_full_rescoring(tiny_judge):
    """A tree search's calls (children extend the last call's solutions by one step) scored with
    the parent's kept KV cache give the full read's scores; only the new tokens are computed."""
    from planner.executor.verifiers.prefix_reuse import PrefixReuseJudge

    reuse = PrefixReuseJudge(tiny_judge)
    q1, q2 = BATCH_PROBLEMS[0], BATCH_PROBLEMS[1]
    rounds = [
        ([q1, q1, q2], [["2 + 3 = 5"], ["2 + 3 = 6"], ["4 * 2 = 8"]]),
        (
            [q1, q1, q2, q2],
            [
                ["2 + 3 = 5", "5 * 4 = 20"],
                ["2 + 3 = 5", "5 * 4 = 21"],
                ["4 * 2 = 8", "8 - 1 = 7"],
                ["4 * 2 = 8", "so 7"],
            ],
        ),  # fmt: skip
        # a blank step adds no step: the same solution again; a parent not kept: read in full
        ([q1, q1, q2], [["2 + 3 = 5", "5 * 4 = 20"], ["2 + 3 = 5", "5 * 4 = 20", "20 + 1 = 21"], ["9"]]),
    ]
    for problems, solutions in rounds:
        got = reuse.score(problems, solutions)
        full = tiny_judge.score(problems, solutions)
        for g, f, q, s in zip(got, full, problems, solutions, strict=True):
            assert g.steps == pytest.approx(f.steps, abs=1e-5)
            assert g.tokens_scored + g.tokens_reused == len(tiny_judge.format(q, s)[0]) == f.tokens_scored
    last = got
    assert last[0].tokens_scored == 0  # kept from the round before
    assert 0 < last[1].tokens_scored < last[1].tokens_reused  # only the new step
    assert last[2].tokens_reused == 0  # no kept parent
