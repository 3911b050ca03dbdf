"""stop_group: a server's children (vLLM's engine core) do not outlive it."""

from __future__ import annotations

import os
import subprocess
import sys
import time

from planner.core.procs import start_group, stop_group

# a parent that starts a long-lived child and exits on SIGTERM without stopping it
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
print(child.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie still answers kill(0): read its state
    with open(f"/proc/{pid}/stat") as f:
        return f.read().split(")")[-1].split()[0] != "Z"


def test_stop_group_ends_the_children_a_parent_leaves_behind():
    proc = start_group([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    assert _alive(child)
    stop_group(proc, timeout_s=10)
    assert proc.returncode is not None
    deadline = time.time() + 10
    while _alive(child) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def test_plain_terminate_would_leave_the_child():
    """The failure stop_group exists for: terminating the parent alone orphans its child."""
    proc = start_group([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    child = int(proc.stdout.readline())
    proc.terminate()
    proc.wait(timeout=10)
    time.sleep(0.5)
    try:
        assert _alive(child)
    finally:
        stop_group(proc, timeout_s=1)  # the group outlives its leader: this still reaches the child
    deadline = time.time() + 10
    while _alive(child) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(child)
