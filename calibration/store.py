"""Crash-safe record files for calibration runs.

One JSON line per (step, problem). Every line carries a checksum of its content, and a batch's
lines go to disk in one write followed by fsync. A line that is torn (no newline, bad JSON or a
checksum that does not match: a crash mid-write) is never read back, and it is cut off before
the next append. A failed write (full disk) truncates the file back to where it was, so what
finished stays intact, and stops the run with a one-line error.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from planner.core.errors import UserError
from planner.core.files import write_text_atomic


def _digest(body: str) -> str:
    return hashlib.blake2b(body.encode("utf-8"), digest_size=8).hexdigest()


def encode(record: dict) -> str:
    body = json.dumps(record, ensure_ascii=False, sort_keys=True, allow_nan=True)
    return json.dumps({"sum": _digest(body), "rec": body}, ensure_ascii=False) + "\n"


def _decode(line: bytes) -> dict | None:
    try:
        outer = json.loads(line)
        body = outer["rec"]
        if _digest(body) != outer["sum"]:
            return None
        record = json.loads(body)
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return None
    return record if isinstance(record, dict) else None


def read(path: Path) -> tuple[list[dict], int]:
    """Valid records of a file, and the byte length of its valid prefix (the rest is torn)."""
    if not path.exists():
        return [], 0
    data = path.read_bytes()
    records, good = [], 0
    pos = 0
    while pos < len(data):
        end = data.find(b"\n", pos)
        if end < 0:
            break  # no newline: torn tail
        record = _decode(data[pos:end])
        if record is None:
            break  # a torn or corrupt line: it and anything after it are not trusted
        records.append(record)
        pos = end + 1
        good = pos
    return records, good


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
