"""Child processes that start their own children (vLLM's engine core, its workers)."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess


def start_group(cmd: list[str], **popen) -> subprocess.Popen:
    """Popen(cmd) as the leader of a new process group, so `stop_group` reaches its children."""
    return subprocess.Popen(cmd, start_new_session=True, **popen)


def stop_group(proc: subprocess.Popen, timeout_s: float = 60) -> None:
    """SIGTERM the process (it may shut its children down), wait up to timeout_s, then SIGKILL
    whatever is left of its group: a child it leaves behind holds memory until killed."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
