"""Writing files so that a reader (or a kill) never sees half of one: the project's one helper.

`atomic_paths` yields temp paths beside the targets; when the block ends without an error each
temp file is fsynced, made readable (0644) and moved over its target with os.replace. Several
targets move as one unit: a journal listing the moves is written first, so a kill between two
moves is finished by the next reader (`finish_moves`): it sees the old files or the new ones,
never a mix. On an error every temp file is removed and the targets are untouched. Only regular
files are replaced: a folder, device or pipe at a target is refused, never swapped for a file.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from planner.core.errors import UserError


def _not_regular(path: Path) -> bool:
    """True when something other than a regular file (or a link to one) is at `path`."""
    try:
        return not stat.S_ISREG(os.stat(path).st_mode)
    except FileNotFoundError:
        return os.path.lexists(path)  # a dangling link
    except OSError:
        return True


def check_output_file(path: str | os.PathLike, what: str = "out") -> Path:
    """A path a file may be written to: its folder exists and is writable, and nothing but a
    regular file is there (os.replace over a folder, device or pipe would swap the node)."""
    path = Path(path)
    if _not_regular(path):
        raise UserError(f"{what}: {path} exists and is not a regular file")
    _check_folder(path.parent, what)
    return path


def check_output_folder(path: str | os.PathLike, what: str = "out") -> Path:
    """A folder that outputs may be written into: an existing writable folder, or a new one in
    an existing writable folder."""
    path = Path(path)
    if path.exists() or path.is_symlink():
        if not path.is_dir():
            raise UserError(f"{what}: {path} exists and is not a folder")
        _check_folder(path, what)
    else:
        _check_folder(path.parent, what)
    return path


def _check_folder(folder: Path, what: str) -> None:
    if not folder.is_dir():
        raise UserError(f"{what}: folder {folder} does not exist")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise UserError(f"{what}: folder {folder} is not writable")


def read_bounded(path: str | os.PathLike, limit: int, what: str) -> bytes:
    """The bytes of a regular file no bigger than `limit`; checked before reading (a pipe or a
    huge file is refused, never read)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"{what}: {path} is not a file" if path.exists() else f"{what}: {path} not found")
    if path.stat().st_size > limit:
        raise UserError(f"{what}: {path} is over {limit} bytes; refusing to read it")
    return path.read_bytes()


def _fsync(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _journal(target: Path) -> Path:
    return target.parent / f".{target.name}.moves.json"


def finish_moves(target: str | os.PathLike) -> None:
    """Finish the moves of an `atomic_paths` call that a kill interrupted (its journal is named
    after the first target); nothing to do when there is no journal."""
    journal = _journal(Path(target))
    try:
        moves = json.loads(journal.read_text(encoding="utf-8"))["moves"]
    except FileNotFoundError:
        return
    except (OSError, ValueError, KeyError, TypeError):
        raise UserError(f"unreadable journal {journal}: remove it and write {target} again") from None
    try:
        for tmp, dest in moves:
            if (journal.parent / tmp).exists():
                os.replace(journal.parent / tmp, journal.parent / dest)
        journal.unlink()
    except OSError as exc:
        raise UserError(f"cannot finish the interrupted write of {target}: {exc.strerror}") from None


@contextmanager
def atomic_paths(*targets: str | os.PathLike) -> Iterator[list[Path]]:
    """Temp paths for `targets` (each beside its target); moved into place together when the
    block succeeds. Targets of one call must share a folder when there are several."""
    paths = [Path(t) for t in targets]
    if len(paths) > 1 and len({p.parent.resolve() for p in paths}) != 1:
        raise ValueError("atomic_paths: several targets must share one folder")
    temps: list[Path] = []
    journal = _journal(paths[0]) if len(paths) > 1 else None
    try:
        finish_moves(paths[0])
        for target in paths:
            if _not_regular(target):
                raise UserError(f"{target} exists and is not a regular file; not replacing it")
            fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            os.close(fd)
            temps.append(Path(tmp))
        yield temps
        for tmp in temps:
            _fsync(tmp)
            os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are shared data
        if journal is not None:
            moves = [[tmp.name, target.name] for tmp, target in zip(temps, paths, strict=True)]
            _write_journal(journal, moves)
        for tmp, target in zip(temps, paths, strict=True):
            os.replace(tmp, target)
        if journal is not None:
            journal.unlink()
    except OSError as exc:
        raise UserError(f"cannot write {paths[0]}: {exc.strerror or type(exc).__name__}") from None
    finally:
        if journal is None or not journal.exists():  # a live journal still needs its temps
            for tmp in temps:
                tmp.unlink(missing_ok=True)


def _write_journal(journal: Path, moves: list) -> None:
    fd, tmp = tempfile.mkstemp(dir=journal.parent, prefix=journal.name, suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump({"moves": moves}, fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, journal)
    finally:
        Path(tmp).unlink(missing_ok=True)


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
