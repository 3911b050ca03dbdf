"""Worst-case wall time of the grader on adversarial answers (README reliability section).

Each answer is graded against a plain gold answer with `is_equivalent` (limit 2 s); prints the
slowest calls and the worst case. Run: python bench/grader_adversarial.py [--json]
"""

from __future__ import annotations

import json
import sys
import time

from planner.executor.grading import is_equivalent

LIMIT_S = 2.0


def adversarial() -> list[tuple[str, str]]:
    """(name, answer) pairs built to be slow or misleading for a LaTeX/SymPy comparison."""
    cases = [
        ("nested parentheses x5000", "(" * 5000 + "1" + ")" * 5000),
        ("nested parentheses x500", "(" * 500 + "1" + ")" * 500),
        ("nested braces x2000", "{" * 2000 + "1" + "}" * 2000),
        ("nested fractions x300", "\\frac{1}{" * 300 + "2" + "}" * 300),
        ("power tower 9^9^9^9", "9^{9^{9^{9}}}"),
        ("power tower 10^10^10", "10^{10^{10}}"),
        ("huge factorial", "100000!"),
        ("nested sqrt x500", "\\sqrt{" * 500 + "2" + "}" * 500),
        ("long sum x20000", "+".join(["1"] * 20000)),
        ("long product x5000", "*".join(["x"] * 5000)),
        ("100k digits", "9" * 100_000),
        ("1M characters", "x" * 1_000_000),
        ("nested sets x1000", "\\{" * 1000 + "1" + "\\}" * 1000),
        ("many intervals", ",".join(["[0,1]"] * 3000)),
        ("matrix 60x60", "\\begin{pmatrix}" + "\\\\".join(["&".join(["x"] * 60)] * 60) + "\\end{pmatrix}"),
        ("integral tower", "\\int " * 200 + "x dx"),
        ("NUL after the answer", "7\x00999"),
        ("NUL before the answer", "\x007"),
        ("unicode digits", "\u0667"),
        ("exponent 1e999999", "1e999999"),
        ("symbolic equation x200", "=".join(["x"] * 200)),
        ("unbalanced braces", "{" * 10000),
        ("backslashes", "\\" * 50000),
        ("deep left-right", "\\left(" * 1000 + "1" + "\\right)" * 1000),
        ("polynomial expand", "(x+1)^{100000}"),
        ("sympy gamma", "\\Gamma(10^{10})"),
    ]
    return cases


def measure() -> list[dict]:
    assert is_equivalent("\\sqrt{4}", "2", timeout_s=30.0)  # the helper starts once, before timing
    rows = []
    for name, answer in adversarial():
        for gold in ("7", "x"):
            start = time.monotonic()
            verdict = is_equivalent(answer, gold, timeout_s=LIMIT_S)
            rows.append({"case": name, "gold": gold, "equal": verdict, "seconds": time.monotonic() - start})
    return rows


def main() -> None:
    rows = measure()
    worst = max(rows, key=lambda r: r["seconds"])
    if "--json" in sys.argv:
        print(json.dumps({"limit_s": LIMIT_S, "worst": worst, "rows": rows}))
        return
    for r in sorted(rows, key=lambda r: -r["seconds"])[:10]:
        print(f"{r['seconds']:6.2f} s  {r['case']} vs {r['gold']}  equal={r['equal']}")
    print(f"worst {worst['seconds']:.2f} s over {len(rows)} calls (limit {LIMIT_S} s)")


if __name__ == "__main__":
    main()
