"""Step-wise expansion shared by beam search and DVTS: partial solutions ("beams"), one generate
call per step for every live beam of every problem, then one verifier call for all children."""

from __future__ import annotations

from dataclasses import dataclass, field

from planner.core.config import MethodConfig
from planner.core.scoring import aggregate
from planner.core.vocab import STEP_DELIMITER
from planner.executor.base import Engine, SamplingOptions, Verifier
from planner.executor.grading import boxed_answer
from planner.executor.methods.common import (
    Usage,
    call_seed,
    extract,
    generate,
    parent_seeds,
    score_solutions,
    split_steps,
)


@dataclass
class Beam:
    """A partial (or finished) solution of one problem."""

    problem: int  # index into the batch
    group: int = 0  # dvts subtree (0 for beam search)
    text: str = ""
    tokens: int = 0  # generated tokens along this path
    step_scores: list[float] = field(default_factory=list)
    score: float = 0.0  # aggregated step scores
    finished: bool = False
    answer: str = ""

    def child(self, step_text: str, tokens: int, finished: bool) -> Beam:
        text = self.text + step_text
        return Beam(
            self.problem, self.group, text, self.tokens + tokens, finished=finished, answer=extract(text)
        )

    def to_candidate(self) -> dict:
        return {
            "answer": self.answer,
            "score": self.score,
            "step_scores": list(self.step_scores),
            "text": self.text,
            "finished": self.finished,
            "group": self.group,
        }


def expand(
    engine: Engine,
    prompts: list[str],
    parents: list[Beam],
    width: int,
    step: int,
    config: MethodConfig,
    usage: list[Usage],
) -> list[list[Beam]]:
    """`width` children for every parent; children[i] belong to parents[i].

    One engine call per step. The engine takes one max_tokens per call, so it is the largest
    budget any parent has left (capped at max_step_tokens except on the last allowed step, which
    generates to the end); a beam that reaches max_total_tokens is finished, so a beam can
    overrun its total budget only within the call that crosses it. Token counts stay measured.
    """
    last = step == config.max_steps - 1
    children: list[list[Beam]] = [[] for _ in parents]
    left = max(config.max_total_tokens - beam.tokens for beam in parents)
    options = SamplingOptions(
        temperature=config.temperature,
        top_p=config.top_p,
        max_tokens=max(1, left if last else min(config.max_step_tokens, left)),
        stop=() if last else (STEP_DELIMITER,),
        n=width,
        seed=call_seed(config.seed, step),
        include_stop=True,
        seeds=parent_seeds(config.seed, step, len(parents), width),
    )
    gens = generate(engine, [prompts[b.problem] + b.text for b in parents], options)
    for i, (parent, gen) in enumerate(zip(parents, gens, strict=True)):
        usage[parent.problem].add_generation(gen)
        for c in gen.completions:
            text = c.text
            # a blank step ("\n\n") is a step like any other (as in the references); only an
            # exactly empty continuation, EOS or the length limit ends the solution
            ended = last or c.stopped_on_eos or c.finish_reason == "length" or text == ""
            if not ended and not text.endswith(STEP_DELIMITER):
                text += STEP_DELIMITER  # an engine that dropped the stop string
            child = parent.child(text, c.tokens, ended)
            # a boxed final answer or a spent token budget also ends the solution; "the answer
            # is" or a "####" heading in a step does not (the references stop on \boxed only)
            done = boxed_answer(child.text) is not None or child.tokens >= config.max_total_tokens
            child.finished = child.finished or done
            children[i].append(child)
    return children


def score_beams(
    verifier: Verifier, questions: list[str], beams: list[Beam], how: str, usage: list[Usage]
) -> None:
    """Score every beam (its whole prefix) in one verifier call; set step_scores and score."""
    scored = score_solutions(
        verifier, [questions[b.problem] for b in beams], [split_steps(b.text) for b in beams]
    )
    for beam, s in zip(beams, scored, strict=True):
        usage[beam.problem].add_scores(s)
        beam.step_scores = [float(x) for x in s.steps]
        beam.score = aggregate(beam.step_scores, how)


def best_first(beams: list[Beam]) -> list[Beam]:
    """Beams by score, highest first; equal scores keep their order (stable)."""
    return sorted(beams, key=lambda b: -b.score)
