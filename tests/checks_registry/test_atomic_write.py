"""The package's one atomic write (recsys_checks.core.files.write_atomic), used by the file store, the runbook runner
and the alert receiver: whole or nothing, the folder fsynced, a create-only write refused over an existing name."""

from __future__ import annotations

import os
import stat

import pytest

from recsys_checks.core import files


def test_a_write_replaces_whole_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "x.json"
    path.write_bytes(b"old")
    files.write_atomic(path, b"new" * 100_000)
    assert path.read_bytes() == b"new" * 100_000 and [p.name for p in tmp_path.iterdir()] == ["x.json"]


def test_the_folder_is_fsynced_after_the_rename(tmp_path, monkeypatch):
    seen = []
    monkeypatch.setattr(files, "fsync_folder", lambda folder: seen.append((folder, (folder / "x").exists())))
    files.write_atomic(tmp_path / "x", b"1")
    assert seen == [(tmp_path, True)]


def test_create_only_refuses_an_existing_name_and_keeps_it(tmp_path):
    path = tmp_path / "a"
    files.write_atomic(path, b"first", create_only=True)
    with pytest.raises(FileExistsError):
        files.write_atomic(path, b"second", create_only=True)
    assert path.read_bytes() == b"first" and [p.name for p in tmp_path.iterdir()] == ["a"]


def test_the_mode_is_exact_whatever_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        files.write_atomic(tmp_path / "m", b"1", mode=0o644)
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(tmp_path / "m").st_mode) == 0o644


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "r"
    path.write_bytes(b"old")

    def full(fd, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "write", full)
    with pytest.raises(OSError):
        files.write_atomic(path, b"new")
    monkeypatch.undo()
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["r"]
