"""Final-answer extraction and equivalence.

`extract_answer` finds the final answer in a solution text; `is_equivalent` compares it with
the gold answer: plain numbers exactly in-process, everything else with math-verify
(`math_verify.parse` / `verify`). math-verify's own timeouts use SIGALRM, which only works in
the main thread, so they are switched off (`parsing_timeout=None`, `timeout_seconds=None`)
and the comparison runs in a helper process instead: it works from any thread, and a
comparison over the time limit is killed with its process and counts as wrong.
"""

from __future__ import annotations

import atexit
import importlib.util
import json
import logging
import os
import re
import select
import subprocess
import sys
import threading
import time
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

logger = logging.getLogger(__name__)

# ---------------------------------------------------------------- extraction

_BOX_RE = re.compile(r"\\(?:boxed|fbox)(?![A-Za-z])")
_ANSWER_RE = re.compile(r"(?:final answer|the answer)\s*(?:is\s*:?|:)|answer\s*:", re.IGNORECASE)
_GSM8K_RE = re.compile(r"####\s*([^\n]*)")
_THOUSANDS_RE = re.compile(r"^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$")


def extract_answer(text: str | None) -> str | None:
    """The final answer in `text`, or None.

    Looks for, in this order: the last complete \\boxed{...} or \\fbox{...} (nested braces;
    "\\boxed 5" too), the last "The answer is ..." / "final answer is ..." / "answer: ...",
    the last GSM8K "#### N". Strips $ signs, \\( \\) delimiters and a trailing period.
    """
    if not isinstance(text, str) or not text:
        return None
    for found in (_last_box(text), _last_phrase(text), _last_gsm8k(text)):
        answer = _clean(found) if found is not None else None
        if answer and not _BOX_RE.search(answer):  # a phrase holding an unclosed box: no answer
            return answer
    return None


def boxed_answer(text: str | None) -> str | None:
    """The last complete \\boxed{...} (or \\fbox) answer in `text`, None when there is none.

    Tree search stops a beam on this only, as both reference implementations do: a phrase such
    as "the answer is" or a Markdown "#### Step 3" heading does not end a solution.
    """
    if not isinstance(text, str) or not text:
        return None
    found = _last_box(text)
    answer = _clean(found) if found is not None else None
    return answer or None


def _last_box(text: str) -> str | None:
    for m in reversed(list(_BOX_RE.finditer(text))):
        rest = text[m.end() :]
        body = rest.lstrip()
        if body.startswith("{"):
            inner = _braced(body)
            if inner is not None and inner.strip():
                return inner
        elif rest[:1].isspace():  # "\boxed 5"
            token = re.match(r"[^\s$]+", body)
            if token:
                return token.group(0)
    return None


def _braced(s: str) -> str | None:
    """Content of the brace group that opens s[0], or None when it never closes."""
    depth = 0
    i = 0
    while i < len(s):
        ch = s[i]
        if ch == "\\":  # skip escaped characters such as \{ and \}
            i += 2
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return s[1:i]
        i += 1
    return None


def _last_phrase(text: str) -> str | None:
    matches = list(_ANSWER_RE.finditer(text))
    if not matches:
        return None
    rest = text[matches[-1].end() :].lstrip(" \t*")
    line = rest.split("\n", 1)[0].strip()
    for left, right in (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]")):
        if line.startswith(left):  # "The answer is $5$ dollars." -> "5"
            end = line.find(right, len(left))
            if end > 0:
                return line[len(left) : end]
    sentence = re.split(r"\.\s", line + " ", maxsplit=1)[0]  # up to the end of the sentence
    return sentence


def _last_gsm8k(text: str) -> str | None:
    matches = list(_GSM8K_RE.finditer(text))
    if not matches:
        return None
    answer = _clean(matches[-1].group(1)) or ""
    return answer.replace(",", "") if _THOUSANDS_RE.match(answer) else answer


def _clean(answer: str) -> str | None:
    s = answer.strip().strip("*").strip()
    for left, right in (("\\(", "\\)"), ("\\[", "\\]")):
        if s.startswith(left) and s.endswith(right):
            s = s[len(left) : -len(right)]
    s = s.strip().strip("$").strip()
    s = s.rstrip(".").rstrip() if not s.endswith("...") else s
    return s.strip("$").strip() or None


# ---------------------------------------------------------------- plain numbers

_NUMBER_RE = re.compile(r"^[+-]?(?:\d+(?:\.\d*)?|\.\d+)$")
_SLASH_RE = re.compile(r"^([+-]?)(\d+)\s*/\s*(\d+)$")
_FRAC_RE = re.compile(r"^([+-]?)\\[dt]?frac(?:\{(\d+)\}\{(\d+)\}|(\d)(\d))$")


def as_number(text: str) -> Fraction | None:
    """Exact value of a plain number: "1,000", "-0.5", "3/4", "\\frac{3}{4}", "\\dfrac12"; else None."""
    s = text.strip().strip("$").strip().replace("\\!", "").replace("{,}", ",").replace(" ", "")
    if _THOUSANDS_RE.match(s):
        s = s.replace(",", "")
    if _NUMBER_RE.match(s):
        return Fraction(s.removesuffix("."))
    m = _SLASH_RE.match(s)
    if m:
        sign, num, den = m.groups()
        return None if int(den) == 0 else Fraction(int(num), int(den)) * (-1 if sign == "-" else 1)
    m = _FRAC_RE.match(s)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        num, den = (m.group(2), m.group(3)) if m.group(2) is not None else (m.group(4), m.group(5))
        return None if int(den) == 0 else sign * Fraction(int(num), int(den))
    return None


# ---------------------------------------------------------------- equivalence


# An answer longer than this is wrong without being parsed (the longest gold answer of the
# shipped datasets has 53 characters); control characters (NUL, ...) make an answer wrong too:
# a parser that stops at "7\x00999" must not read it as 7.
MAX_ANSWER_CHARS = 1_000
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def _admissible(answer: str) -> bool:
    return len(answer) <= MAX_ANSWER_CHARS and not _CONTROL_RE.search(answer)


def is_equivalent(pred: str | None, gold: str | None, timeout_s: float = 2.0) -> bool:
    """True when `pred` and `gold` are the same answer. Never raises.

    Plain numbers are compared exactly (1,000 == 1000, 0.5 == 1/2, "23.0" == "23");
    anything else goes to math-verify with a wall-clock limit of `timeout_s` seconds.
    An unparseable answer, one over MAX_ANSWER_CHARS or with control characters, an error or a
    comparison over the limit counts as wrong.
    """
    try:
        if not isinstance(pred, str) or not isinstance(gold, str):
            return False
        if not (_admissible(pred) and _admissible(gold)):
            return False
        p, g = _clean(pred), _clean(gold)
        if not p or not g:
            return False
        if p == g:
            return True
        pn, gn = as_number(p), as_number(g)
        if pn is not None and gn is not None:
            return pn == gn
        return math_verify_equal(p, g, timeout_s)
    except Exception:  # noqa: BLE001 - grading must never raise
        logger.debug("grading failed for %r vs %r", pred, gold, exc_info=True)
        return False


def grade(text: str | None, gold: str) -> tuple[str | None, bool]:
    """(extracted answer or None, whether it is equivalent to `gold`)."""
    answer = extract_answer(text)
    return answer, answer is not None and is_equivalent(answer, gold)


def math_verify_equal(pred: str, gold: str, timeout_s: float = 2.0) -> bool:
    """math-verify's verdict on two answer strings, run in the helper process; False on timeout."""
    if not timeout_s or timeout_s <= 0 or not _has_math_verify():
        return False
    return _WORKER.compare(pred, gold, timeout_s)


@lru_cache(maxsize=1)
def _has_math_verify() -> bool:
    """math-verify comes with the [hf] extra; without it only plain numbers and equal strings match."""
    found = importlib.util.find_spec("math_verify") is not None
    if not found:
        logger.warning(
            "math-verify is not installed (extra [hf]): only plain numbers and equal strings grade"
        )
    return found


def _wrap(answer: str) -> str:
    return f"${answer}$"


def _compare_in_process(pred: str, gold: str) -> bool:
    """math-verify with its signal timeouts off; the caller bounds the time."""
    from math_verify import parse, verify

    gold_parsed = parse(_wrap(gold), parsing_timeout=None)
    pred_parsed = parse(_wrap(pred), parsing_timeout=None)
    if not gold_parsed or not pred_parsed:
        return False
    return bool(verify(gold_parsed, pred_parsed, timeout_seconds=None))


def _compare_in_thread(pred: str, gold: str, timeout_s: float) -> bool:
    """Fallback without a helper process: a daemon thread that is abandoned (not stopped) on timeout."""
    result: list[bool] = []

    def run() -> None:
        try:
            result.append(_compare_in_process(pred, gold))
        except BaseException:  # noqa: BLE001
            result.append(False)

    thread = threading.Thread(target=run, daemon=True, name="grading-fallback")
    thread.start()
    thread.join(timeout_s)
    return bool(result and result[0])


# One comparison of each kind the datasets hold: tuples, intervals, matrices, text, sets.
_WARM_UP = (
    ("1", "1"),
    ("(3, \\pi/2)", "\\left( 3, \\frac{\\pi}{2} \\right)"),
    ("(0.6, 8/3]", "\\left(\\frac{3}{5},\\frac{8}{3}\\right]"),
    ("\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}"),
    ("\\sqrt{52}", "2\\sqrt{13}"),
    ("ab+2a+5b+10", "(a+5)(b+2)"),
    ("Evelyn", "\\text{Evelyn}"),
    ("(9,36) \\cup (0,9)", "(0,9) \\cup (9,36)"),
)


def serve() -> None:
    """The helper process: reads JSON [pred, gold] lines on stdin, writes "1" or "0" lines."""
    logging.getLogger("math_verify").setLevel(logging.ERROR)  # silences "timeout is disabled"
    out = os.fdopen(os.dup(1), "w")  # replies only: stray prints of the libraries go to stderr
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    for pred, gold in _WARM_UP:  # import and warm up (sympy imports lazily) before saying ready
        try:
            _compare_in_process(pred, gold)
        except Exception:  # noqa: BLE001
            pass
    out.write("ready\n")
    out.flush()
    for line in sys.stdin:
        try:
            pred, gold = json.loads(line)
            result = _compare_in_process(pred, gold)
        except BaseException:  # noqa: BLE001 - a bad answer is a wrong answer
            result = False
        out.write("1\n" if result else "0\n")
        out.flush()


class _Helper:
    """One `python -c` helper process (not multiprocessing: the caller's main module is never
    imported again in the child) and its unread output."""

    def __init__(self) -> None:
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
        self.process = subprocess.Popen(
            [sys.executable, "-c", "from planner.executor.grading import serve; serve()"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=env,
        )
        self.buffer = b""
        self.ready = False

    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_ready(self, deadline: float) -> bool:
        """True once the helper has said "ready" (it imports math-verify first)."""
        if not self.ready:
            line = self.read_line(deadline)
            if line is None:
                return False
            if line != "ready":
                raise RuntimeError(f"grading helper said {line!r} instead of ready")
            self.ready = True
        return True

    def read_line(self, deadline: float) -> str | None:
        """The next output line, or None when none came before `deadline` (time.monotonic)."""
        fd = self.process.stdout.fileno()
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([fd], [], [], left)[0]:
                return None
            chunk = os.read(fd, 4096)
            if not chunk:
                raise EOFError("grading helper exited")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode().strip()

    def kill(self) -> None:
        """Kill without waiting: a helper that grew huge takes a while to exit; a thread reaps it."""
        self.process.kill()
        threading.Thread(target=self.process.wait, daemon=True, name="grading-reaper").start()
        for stream in (self.process.stdin, self.process.stdout):
            try:
                stream.close()
            except OSError:
                pass


class _Worker:
    """The helper that compares, and a warm spare, shared by all threads (requests are
    serialised by a lock).

    The limit is enforced from outside and bounds the whole call: a comparison over it is
    killed with its process. The spare, started and warmed up beside the active helper, takes
    over at once, so a kill costs the next call no start-up time. Only when kills come faster
    than a helper starts does a call wait for one, within its limit (and count wrong when the
    limit passes first). The very first start of all is not counted.
    """

    start_timeout_s = 120.0  # import time on a busy machine; not counted against a comparison

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._active: _Helper | None = None
        self._spare: _Helper | None = None
        self.broken = False  # True once a helper could not start

    def compare(self, pred: str, gold: str, timeout_s: float) -> bool:
        with self._lock:
            if self.broken:
                return _compare_in_thread(pred, gold, timeout_s)
            try:
                deadline = self._ensure_started(timeout_s)
            except Exception:  # noqa: BLE001 - cannot start processes here: fall back for good
                logger.warning("grading helper process failed to start; grading in threads", exc_info=True)
                self.broken = True
                self._stop()
                return _compare_in_thread(pred, gold, timeout_s)
            try:
                if self._active.wait_ready(deadline):
                    self._active.process.stdin.write((json.dumps([pred, gold]) + "\n").encode())
                    self._active.process.stdin.flush()
                    reply = self._active.read_line(deadline)
                    if reply is not None:
                        return reply == "1"
                logger.info(
                    "comparison over %.1f s, counted wrong: %r vs %r", timeout_s, pred[:80], gold[:80]
                )
            except Exception:  # noqa: BLE001 - a dead or broken helper: the spare takes over
                logger.debug("grading helper failed", exc_info=True)
            self._active.kill()
            self._active = None
            return False

    def _ensure_started(self, timeout_s: float) -> float:
        """An active helper and a spare; returns the call's deadline."""
        first = self._active is None and self._spare is None
        if self._active is not None and not self._active.alive():
            self._active.kill()
            self._active = None
        if self._active is None:
            self._active, self._spare = self._spare or _Helper(), None
        if self._spare is None or not self._spare.alive():
            self._spare = _Helper()
        if first and not self._active.wait_ready(time.monotonic() + self.start_timeout_s):
            raise RuntimeError(f"grading helper did not start within {self.start_timeout_s:.0f} s")
        return time.monotonic() + timeout_s

    def _stop(self) -> None:
        for helper in (self._active, self._spare):
            if helper is not None:
                helper.kill()
        self._active = self._spare = None

    def close(self) -> None:
        """Stop the helpers (also at exit; does not wait long for a thread that is grading)."""
        locked = self._lock.acquire(timeout=1.0)
        try:
            self._stop()
        finally:
            if locked:
                self._lock.release()


_WORKER = _Worker()
atexit.register(_WORKER.close)
