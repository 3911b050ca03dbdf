"""Writing files so that a reader (or a kill) never sees half of one: the project's one helper.

`atomic_paths` yields temp paths beside the targets; when the block ends without an error each
temp file is fsynced, made readable (0644) and moved over its target with os.replace, in order;
on an error every temp file is removed and the targets are untouched.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from planner.core.errors import UserError


def check_output_file(path: str | os.PathLike, what: str = "output") -> Path:
    """A path a file may be written to: its folder exists, and it is not a folder, a device or a
    pipe (os.replace over those would swap the node for a file)."""
    path = Path(path)
    if path.exists() and not path.is_file():
        raise UserError(f"{what} {path} exists and is not a regular file")
    if not path.parent.is_dir():
        raise UserError(f"folder for {what} does not exist: {path.parent}")
    return path


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


@contextmanager
def atomic_paths(*targets: str | os.PathLike) -> Iterator[list[Path]]:
    """Temp paths for `targets` (same folders); moved into place together when the block succeeds."""
    temps: list[Path] = []
    try:
        for target in map(Path, targets):
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            os.close(fd)
            temps.append(Path(tmp))
        yield temps
        for tmp in temps:
            _fsync(tmp)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are shared data
        for tmp, target in zip(temps, targets, strict=True):
            os.replace(tmp, target)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


@contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """One temp path for `target`, moved into place when the block succeeds."""
    with atomic_paths(target) as (tmp,):
        yield tmp


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | os.PathLike, text: str) -> None:
    write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj: object) -> None:
    """`obj` as indented JSON with a final newline."""
    write_text_atomic(path, json.dumps(obj, indent=2) + "\n")
