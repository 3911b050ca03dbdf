"""Crash-safe record files: torn or corrupt lines are never read back; a failed write leaves the file as it was."""

from __future__ import annotations

import errno
import os

import pytest

from calibration import store
from planner.core.errors import UserError


def test_round_trip_and_order(tmp_path):
    path = tmp_path / "b.jsonl"
    store.append(path, [{"a": 1}, {"a": 2}])
    store.append(path, [{"a": 3}])
    records, good = store.read(path)
    assert [r["a"] for r in records] == [1, 2, 3]
    assert good == path.stat().st_size


def test_torn_tail_is_ignored_then_cut_before_the_next_append(tmp_path):
    path = tmp_path / "b.jsonl"
    store.append(path, [{"a": 1}])
    whole = path.read_bytes()
    line = store.encode({"a": 2}).encode()
    for cut in (1, len(line) // 2, len(line) - 1):  # every prefix of a line without its newline
        path.write_bytes(whole + line[:cut])
        assert [r["a"] for r in store.read(path)[0]] == [1]
    store.append(path, [{"a": 3}])
    assert [r["a"] for r in store.read(path)[0]] == [1, 3]
    assert path.read_bytes() == whole + store.encode({"a": 3}).encode()


def test_checksum_mismatch_is_not_read(tmp_path):
    path = tmp_path / "b.jsonl"
    store.append(path, [{"a": 1}, {"a": 2}])
    data = path.read_bytes().replace(b'\\"a\\": 2', b'\\"a\\": 7')
    path.write_bytes(data)
    assert [r["a"] for r in store.read(path)[0]] == [1]


def test_full_disk_keeps_what_finished(tmp_path, monkeypatch):
    path = tmp_path / "b.jsonl"
    store.append(path, [{"a": 1}])
    before = path.read_bytes()
    real_write = os.write

    def half_then_enospc(fd, data):
        real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.os, "write", half_then_enospc)
    with pytest.raises(UserError) as err:
        store.append(path, [{"a": 2}, {"a": 3}])
    msg = str(err.value)
    assert "No space left on device" in msg and "finished results are intact" in msg and "\n" not in msg
    monkeypatch.setattr(store.os, "write", real_write)
    assert path.read_bytes() == before
    assert [r["a"] for r in store.read(path)[0]] == [1]
