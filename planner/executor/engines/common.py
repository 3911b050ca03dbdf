"""What both engines share: prompt text, stop handling, finish reasons.

Both engines build the prompt here from the same tokenizer, so the same model gets the same
prompt text (and token ids) in vLLM and transformers. Prompts are tokenized without adding
special tokens: the text carries them itself (chat template, or <bos> for few-shot).
"""

from __future__ import annotations

from planner.executor.base import Completion

SYSTEM_PROMPT = (
    "Solve the math problem step by step. Write each step as a short paragraph and separate "
    "the steps with a blank line. End with the final answer in the form \\boxed{answer}."
)

# Worked examples for base models (no chat template), in the same format the system prompt asks for.
FEWSHOT_EXAMPLES: tuple[tuple[str, tuple[str, ...], str], ...] = (
    ("What is 6 + 7?", ("6 + 7 = 13.",), "13"),
    (
        "Tom has 3 apples and buys 4 more. How many apples does he have now?",
        ("Tom starts with 3 apples.", "He buys 4 more, so he has 3 + 4 = 7 apples."),
        "7",
    ),
    ("What is 9 - 5?", ("9 - 5 = 4.",), "4"),
    (
        "A box holds 2 rows of 6 eggs. How many eggs are in the box?",
        ("Each row has 6 eggs.", "There are 2 rows, so 2 * 6 = 12 eggs."),
        "12",
    ),
)

QUESTION = "Question: "
SOLUTION = "Solution:\n"
# A base model that starts the next example has finished its solution: engines stop there
# and report it like EOS. Longest first, so that "\n\nQuestion:" is cut with its blank line.
END_MARKERS: tuple[str, ...] = ("\n\n" + QUESTION.strip(), QUESTION.strip())


def fewshot_block(problem: str, steps: tuple[str, ...] = (), answer: str | None = None) -> str:
    text = f"{QUESTION}{problem}\n{SOLUTION}"
    if answer is None:
        return text
    return text + "\n\n".join((*steps, f"The final answer is \\boxed{{{answer}}}."))


def format_prompt(tokenizer, style: str, problem: str) -> str:
    """The prompt text that starts a solution of `problem` ("chat" or "fewshot" style)."""
    if style == "chat":
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": problem}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    examples = "\n\n".join(fewshot_block(q, s, a) for q, s, a in FEWSHOT_EXAMPLES)
    bos = tokenizer.bos_token or ""
    return f"{bos}{examples}\n\n{fewshot_block(problem)}"


def encode(tokenizer, text: str) -> list[int]:
    """Token ids of a prompt; special tokens come from the text itself."""
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def first_stop(text: str, stops: tuple[str, ...] | list[str]) -> tuple[int, str] | None:
    """(start, stop) of the first stop string, in list order, that occurs in text (as vLLM checks)."""
    for stop in stops:
        i = text.find(stop)
        if i >= 0:
            return i, stop
    return None


def make_completion(
    text: str,
    tokens: int,
    matched: str | None,
    eos: bool,
    user_stops: tuple[str, ...],
    include_stop: bool,
) -> Completion:
    """A Completion from raw engine output.

    text: generated text, cut right after the matched stop string (included) if any;
    matched: the stop string that ended it (user stop or end marker), None otherwise;
    eos: the model emitted an end-of-sequence token.
    """
    if matched is not None and matched not in user_stops:  # few-shot end marker: the model is done
        return Completion(text[: len(text) - len(matched)], tokens, "stop", stopped_on_eos=True)
    if matched is not None:
        if not include_stop:
            text = text[: len(text) - len(matched)]
        return Completion(text, tokens, "stop", stopped_on_eos=False)
    if eos:
        return Completion(text, tokens, "stop", stopped_on_eos=True)
    return Completion(text, tokens, "length")


def engine_stops(style: str, user_stops: tuple[str, ...]) -> tuple[str, ...]:
    """The stop strings an engine watches: the user's, then the few-shot end markers."""
    extra = END_MARKERS if style == "fewshot" else ()
    return tuple(user_stops) + tuple(m for m in extra if m not in user_stops)
