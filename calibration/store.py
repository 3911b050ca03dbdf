"""Crash-safe record files for calibration runs.

One JSON line per (step, problem). Every line carries a checksum of its content, and a batch's
lines go to disk in one write followed by fsync. A line that is torn (no newline, bad JSON or a
checksum that does not match: a crash mid-write) is never read back, and it is cut off before
the next append. A failed write (full disk) truncates the file back to where it was, so what
finished stays intact, and stops the run with a one-line error.
"""

from __future__ import annotations

import os
from pathlib import Path

from planner.core.errors import UserError
from planner.core.files import write_text_atomic
from planner.core.runfile import encode, read


def append(path: Path, records: list[dict]) -> None:
    """Append whole records atomically with respect to crashes: one write, then fsync."""
    if not records:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    _, good = read(path)
    data = "".join(encode(r) for r in records).encode("utf-8")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size != good:
            os.ftruncate(fd, good)  # drop a torn tail left by a crash
        os.lseek(fd, good, os.SEEK_SET)
        try:
            written = 0
            while written < len(data):
                written += os.write(fd, data[written:])
            os.fsync(fd)
        except OSError as exc:
            try:
                os.ftruncate(fd, good)
                os.fsync(fd)
            except OSError:
                pass  # the checksums still keep a half-written record from being read
            raise UserError(
                f"cannot write {path}: {exc.strerror or exc}; finished results are intact, "
                f"fix this and re-run the same command to resume"
            ) from None
    finally:
        os.close(fd)


def drop(path: Path, keep) -> int:
    """Rewrite `path` with only the records for which keep(record) is true (temp file + os.replace).
    Returns how many were dropped."""
    records, _ = read(path)
    kept = [r for r in records if keep(r)]
    if len(kept) == len(records):
        return 0
    write_text_atomic(path, "".join(encode(r) for r in kept))
    return len(records) - len(kept)
