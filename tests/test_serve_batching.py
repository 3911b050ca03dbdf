"""The batching queue of ttsplan serve, on the deterministic fake engine (orchestration only)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from planner.core.config import MethodConfig
from planner.executor.methods import run_method
from planner.serve.batching import Batcher, Cancelled
from tests.fake_engine import FakeEngine, FakeVerifier

BON = MethodConfig("best_of_n", n=4)
MAJORITY = MethodConfig("majority", n=3)


class Gated(FakeEngine):
    """FakeEngine whose generate waits for `gate` (set it to let calls through) and calls
    `after_call` after each call."""

    def __init__(self, per_request_seeds: bool = True, **kw) -> None:
        super().__init__(**kw)
        self.per_request_seeds = per_request_seeds
        self.gate = threading.Event()
        self.entered = threading.Event()
        self.after_call = None

    def generate(self, prompts, options):
        self.entered.set()
        assert self.gate.wait(10)
        out = super().generate(prompts, options)
        if self.after_call:
            self.after_call()
        return out


def wait_all(jobs):
    return [j.future.result(timeout=20) for j in jobs]


def test_requests_arriving_together_share_one_engine_and_verifier_call():
    engine, verifier = FakeEngine(), FakeVerifier()
    batcher = Batcher(engine, verifier, window_s=0.5, gap_s=0.2)
    questions = [f"What is {i} + {i}?" for i in range(5)]
    jobs = [batcher.submit(q, BON, None) for q in questions]
    outcomes = wait_all(jobs)
    batcher.close()
    assert len(engine.calls) == 1 and len(engine.calls[0][0]) == 5
    assert verifier.calls == [20]  # 5 problems x n=4 in one verifier call
    assert {o.batch_size for o in outcomes} == {5} and {o.seed for o in outcomes} == {0}
    # each answer is what the method gives for that question alone with the same seed
    for q, o in zip(questions, outcomes, strict=True):
        alone = run_method(FakeEngine(), FakeVerifier(), [q], replace(BON, seed=o.seed))[0]
        assert (o.result.answer, o.result.text) == (alone.answer, alone.text)


def test_requests_arriving_during_a_batch_form_the_next_batch():
    engine = Gated()
    batcher = Batcher(engine, None, window_s=0.0, gap_s=0.0)
    first = batcher.submit("q0", MAJORITY, None)
    assert engine.entered.wait(5)
    rest = [batcher.submit(f"q{i}", MAJORITY, None) for i in range(1, 4)]
    engine.gate.set()
    wait_all([first, *rest])
    batcher.close()
    assert [len(prompts) for prompts, _ in engine.calls] == [1, 3]
    assert {j.future.result().seed for j in rest} == {1}  # the next server seed


@pytest.mark.parametrize("hold, expected", [(2.0, [2]), (0.0, [1, 1])])
def test_a_request_still_arriving_joins_the_batch_being_gathered(hold, expected):
    """A request the server is still checking when the gap runs out is waited for (up to hold_s);
    with hold_s 0 the first job goes alone."""
    engine = FakeEngine()
    batcher = Batcher(engine, None, window_s=0.05, gap_s=0.01, hold_s=hold)
    checking, submitted = threading.Event(), []

    def late_request():
        with batcher.arriving():
            checking.set()
            time.sleep(0.3)  # slow checks: far longer than gap_s and window_s
            submitted.append(batcher.submit("q1", MAJORITY, None))

    thread = threading.Thread(target=late_request)
    thread.start()
    assert checking.wait(5)
    first = batcher.submit("q0", MAJORITY, None)
    thread.join(10)
    wait_all([first, *submitted])
    batcher.close()
    assert [len(prompts) for prompts, _ in engine.calls] == expected


@pytest.mark.parametrize("share, expected", [(0.5, [1, 2]), (0.0, [1, 1, 1])])
def test_waits_grow_with_the_length_of_a_method_call(share, expected):
    """After a 0.6 s call the gap is 0.3 s at wait_share 0.5: a request 0.1 s behind the first
    joins its batch; with wait_share 0 the 10 ms gap leaves it for the next call."""
    engine = Gated()
    batcher = Batcher(engine, None, window_s=0.05, gap_s=0.01, hold_s=2.0, wait_share=share)
    threading.Timer(0.6, engine.gate.set).start()
    wait_all([batcher.submit("q0", MAJORITY, None)])  # a slow call: 0.6 s
    first = batcher.submit("q1", MAJORITY, None)
    time.sleep(0.1)
    wait_all([first, batcher.submit("q2", MAJORITY, None)])
    batcher.close()
    assert [len(prompts) for prompts, _ in engine.calls] == expected


def test_identical_seeded_requests_run_once_and_agree():
    engine = Gated()
    engine.gate.set()
    batcher = Batcher(engine, None, window_s=0.5, gap_s=0.2)
    jobs = [batcher.submit("What is 2 + 2?", MAJORITY, 7) for _ in range(3)]
    outcomes = wait_all(jobs)
    batcher.close()
    assert [len(p) for p, _ in engine.calls] == [1]
    assert len({o.result.text for o in outcomes}) == 1 and {o.seed for o in outcomes} == {7}


def test_batch_dependent_engine_runs_seeded_requests_alone():
    engine = Gated(per_request_seeds=False)  # like transformers: samples depend on the batch
    engine.gate.set()
    batcher = Batcher(engine, None, window_s=0.5, gap_s=0.2)
    seeded = [batcher.submit(f"q{i}", MAJORITY, 5) for i in range(3)]
    unseeded = [batcher.submit(f"u{i}", MAJORITY, None) for i in range(3)]
    wait_all(seeded + unseeded)
    batcher.close()
    assert sorted(len(p) for p, _ in engine.calls) == [1, 1, 1, 3]


def test_request_cancelled_before_its_batch_costs_nothing():
    engine = Gated()
    batcher = Batcher(engine, None, window_s=0.0, gap_s=0.0)
    first = batcher.submit("q-first", MAJORITY, None)
    assert engine.entered.wait(5)
    gone = batcher.submit("q-gone", MAJORITY, None)
    gone.cancel()
    engine.gate.set()
    first.future.result(timeout=10)
    with pytest.raises(Cancelled):
        gone.future.result(timeout=10)
    batcher.close()
    assert all("q-gone" not in p for prompts, _ in engine.calls for p in prompts)


def test_request_cancelled_mid_search_stops_generating_and_scoring():
    engine, verifier = Gated(max_len=4), FakeVerifier()
    engine.gate.set()
    batcher = Batcher(engine, verifier, window_s=0.5, gap_s=0.2)
    config = MethodConfig("beam", n=4, beam_width=2, max_steps=4)
    keep = batcher.submit("q-keep", config, 3)
    gone = batcher.submit("q-gone", config, 3)
    engine.after_call = gone.cancel  # the client goes away after the first step
    keep.future.result(timeout=20)
    with pytest.raises(Cancelled):
        gone.future.result(timeout=20)
    batcher.close()
    assert len(engine.calls) >= 2
    first, later = engine.calls[0][0], [p for prompts, _ in engine.calls[1:] for p in prompts]
    assert any("q-gone" in p for p in first)
    assert later and all("q-gone" not in p for p in later)
    # the result of the kept request is what it gets alone
    alone = run_method(FakeEngine(max_len=4), FakeVerifier(), ["q-keep"], replace(config, seed=3))[0]
    assert keep.future.result().result.text == alone.text


def test_engine_failure_reaches_every_request_of_the_batch():
    class Broken(FakeEngine):
        def generate(self, prompts, options):
            raise RuntimeError("backend down")

    batcher = Batcher(Broken(), None, window_s=0.5, gap_s=0.2)
    jobs = [batcher.submit(f"q{i}", MAJORITY, None) for i in range(2)]
    for job in jobs:
        with pytest.raises(RuntimeError, match="backend down"):
            job.future.result(timeout=10)
    assert batcher._thread.is_alive()  # the worker goes on with the next batch
    batcher.close()
