"""A small batching queue: requests that arrive together run as one batch of problems through the
same method call (so the same engine and verifier calls), on one worker thread that owns the engine.

Jobs are grouped by configuration and seed. A group without explicit seeds gets the next server seed
(reported back, so a client can replay it); jobs with the same explicit seed share a group only when
the engine samples each request from its own seed (vLLM, the openai engine: `per_request_seeds`);
with transformers, whose samples depend on the whole batch, each such job runs alone so that the
same request with the same seed gives the same answer. Identical seeded jobs of a group run once.

A cancelled job (its client went away) is dropped before its batch starts; once running, the
engine and verifier wrappers below stop generating and scoring its prompts, so it stops costing
compute while the rest of its batch goes on.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass, field, replace

from planner.core.config import MethodConfig
from planner.executor.base import Completion, Generation, SamplingOptions, StepScores
from planner.executor.methods import run_method


class Cancelled(Exception):
    """The job's client went away before its answer was ready."""


@dataclass
class Job:
    question: str
    config: MethodConfig  # seed: the explicit seed, or anything when seed is None
    seed: int | None
    future: Future = field(default_factory=Future)
    cancelled: threading.Event = field(default_factory=threading.Event)
    submitted: float = field(default_factory=time.perf_counter)

    def cancel(self) -> None:
        self.cancelled.set()


@dataclass
class Outcome:
    """What a job gets back: the method's result, the seed it ran with, its batch."""

    result: object  # planner.executor.methods.common.Result
    seed: int
    batch_size: int  # problems in the method call
    wall_s: float  # the method call's wall time


class SkipCancelled:
    """Engine wrapper: prompts of problems whose jobs are all cancelled get empty, finished
    completions without reaching the engine."""

    def __init__(self, engine, prefixes: dict[str, list[Job]]) -> None:
        self.engine = engine
        self.name = engine.name
        self.prefixes = prefixes  # formatted prompt of a question -> its jobs

    def format_prompt(self, problem: str) -> str:
        return self.engine.format_prompt(problem)

    def _dead(self, prompt: str) -> bool:
        for prefix, jobs in self.prefixes.items():
            if prompt.startswith(prefix):
                return all(j.cancelled.is_set() for j in jobs)
        return False

    def generate(self, prompts: list[str], options: SamplingOptions) -> list[Generation]:
        live = [i for i, p in enumerate(prompts) if not self._dead(p)]
        done = self.engine.generate([prompts[i] for i in live], options) if live else []
        out: list[Generation] = [
            Generation([Completion("", 0, "stop", stopped_on_eos=True) for _ in range(options.n)], 0)
            for _ in prompts
        ]
        for i, gen in zip(live, done, strict=True):
            out[i] = gen
        return out


class SkipCancelledVerifier:
    """Verifier wrapper: solutions of cancelled questions score 0 and cost nothing."""

    def __init__(self, verifier, questions: dict[str, list[Job]]) -> None:
        self.verifier = verifier
        self.name = verifier.name
        self.spec_name = getattr(verifier, "spec_name", None)
        self.questions = questions

    def _dead(self, question: str) -> bool:
        jobs = self.questions.get(question, [])
        return bool(jobs) and all(j.cancelled.is_set() for j in jobs)

    def score(self, problems: list[str], solutions: list[list[str]]) -> list[StepScores]:
        live = [i for i, q in enumerate(problems) if not self._dead(q)]
        done = self.verifier.score([problems[i] for i in live], [solutions[i] for i in live]) if live else []
        out = [StepScores([0.0] * len(s)) for s in solutions]
        for i, s in zip(live, done, strict=True):
            out[i] = s
        return out


class Batcher:
    """One worker thread runs the batches; submit() from any thread.

    max_batch: most problems in one method call. After the first job arrives the worker goes on
    taking jobs while they keep coming (each within gap_s of the last), for at most window_s: a
    burst of clients becomes one batch, while a lone request waits only gap_s. Requests the server
    has received but not yet submitted (inside `arriving()`: parsing, checks, planning) are waited
    for too, up to hold_s from the first job: on a loaded machine a burst's checks take longer
    than gap_s, and a job that started alone would hold the rest back for a whole engine call.
    Jobs that arrive while a batch runs wait for the next one anyway, so both waits grow with the
    last method call's wall time (gap at least wait_share of it, window 5 times that, at most
    hold_s / 5 and hold_s): a lone request then waits a small share of one call, while a client of
    a burst that is a little late (threads and connections start slowly on a loaded machine) no
    longer waits a whole call behind the first job.
    on_batch(size, wall_s) is called after every method call (for metrics).
    """

    def __init__(
        self,
        engine,
        verifier=None,
        max_batch: int = 16,
        window_s: float = 0.1,
        gap_s: float = 0.01,
        seed: int = 0,
        on_batch=None,
        hold_s: float = 0.5,
        wait_share: float = 0.02,
    ) -> None:
        self.engine = engine
        self.verifier = verifier
        self.max_batch = max_batch
        self.window_s = window_s
        self.gap_s = gap_s
        self.hold_s = hold_s
        self.wait_share = wait_share
        self._last_wall = 0.0  # the last method call's wall time
        self._arriving = 0
        self._arriving_lock = threading.Lock()
        self.per_request_seeds = bool(getattr(engine, "per_request_seeds", False))
        self.on_batch = on_batch
        self._next_seed = seed
        self._queue: queue.Queue[Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="tts-batcher", daemon=True)
        self._thread.start()

    def submit(self, question: str, config: MethodConfig, seed: int | None) -> Job:
        job = Job(question, replace(config, seed=seed or 0), seed)
        self._queue.put(job)
        return job

    @contextlib.contextmanager
    def arriving(self):
        """Around a request's work before submit(): a batch being gathered waits for it."""
        with self._arriving_lock:
            self._arriving += 1
        try:
            yield
        finally:
            with self._arriving_lock:
                self._arriving -= 1

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=60)

    # ------------------------------------------------------------ the worker

    def _take(self) -> list[Job] | None:
        """The waiting jobs: block for one, then gather what keeps arriving (see the class)."""
        first = self._queue.get()
        if first is None:
            return None
        jobs = [first]
        scaled = self.wait_share * self._last_wall
        gap = max(self.gap_s, min(scaled, self.hold_s / 5))
        start = time.perf_counter()
        deadline = start + max(self.window_s, min(5 * scaled, self.hold_s))
        hold = start + self.hold_s

        def more_coming() -> bool:
            return self._arriving > 0 and time.perf_counter() < hold

        while len(jobs) < self.max_batch * 4:
            wait = gap if more_coming() else min(gap, deadline - time.perf_counter())
            try:
                job = self._queue.get(timeout=max(0.0, wait))
            except queue.Empty:
                if more_coming():
                    continue
                break
            if job is None:
                self._queue.put(None)
                break
            jobs.append(job)
        return jobs

    def _key(self, job: Job):
        if job.seed is None:
            return (job.config, None, None)
        if self.per_request_seeds:
            return (job.config, job.seed, None)
        return (job.config, job.seed, id(job))  # alone: the engine's samples depend on the batch

    def _loop(self) -> None:
        while True:
            jobs = self._take()
            if jobs is None:
                return
            groups: dict = {}
            for job in jobs:
                if job.cancelled.is_set():
                    job.future.set_exception(Cancelled())
                    continue
                groups.setdefault(self._key(job), []).append(job)
            for group in groups.values():
                for start in range(0, len(group), self.max_batch):
                    self._run(group[start : start + self.max_batch])

    def _run(self, jobs: list[Job]) -> None:
        for job in jobs:
            if job.cancelled.is_set():
                job.future.set_exception(Cancelled())
        jobs = [j for j in jobs if not j.future.done()]
        if not jobs:
            return
        seeded = jobs[0].seed is not None
        if seeded:
            config = jobs[0].config
        else:
            config = replace(jobs[0].config, seed=self._next_seed)
            self._next_seed += 1
        # identical seeded requests run once; unseeded ones are separate samples
        problems: list[str] = []
        owners: list[list[Job]] = []
        for job in jobs:
            if seeded and job.question in problems:
                owners[problems.index(job.question)].append(job)
            else:
                problems.append(job.question)
                owners.append([job])
        by_question: dict[str, list[Job]] = {}
        for question, own in zip(problems, owners, strict=True):
            by_question.setdefault(question, []).extend(own)
        try:
            prefixes = {self.engine.format_prompt(q): js for q, js in by_question.items()}
            engine = SkipCancelled(self.engine, prefixes)
            verifier = (
                SkipCancelledVerifier(self.verifier, by_question) if self.verifier is not None else None
            )
            t0 = time.perf_counter()
            results = run_method(engine, verifier, problems, config)
            wall = time.perf_counter() - t0
            self._last_wall = wall
        except Exception as exc:  # the engine or verifier failed: every job of the batch hears it
            for job in jobs:
                if not job.future.done():
                    job.future.set_exception(exc)
            return
        if self.on_batch is not None:
            self.on_batch(len(problems), wall)
        for result, own in zip(results, owners, strict=True):
            for job in own:
                if job.cancelled.is_set():
                    job.future.set_exception(Cancelled())
                else:
                    job.future.set_result(Outcome(result, config.seed, len(problems), wall))
