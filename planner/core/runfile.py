"""The calibration run-record format: one JSON line {"sum", "rec"} per (step, problem), the
checksum over the record's text. Read here (the predictor reads runs too) and written by
calibration.store, which makes the appends crash-safe. A torn or corrupt line is never read back."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


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
