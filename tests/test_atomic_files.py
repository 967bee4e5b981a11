"""Atomic writes: complete new content or the old file untouched, and no temporary left behind."""

from __future__ import annotations

import os

import pytest

from chromosched.atomic_files import write_bytes_atomic, write_text_atomic


def test_writes_bytes_and_text_creating_the_folder(tmp_path):
    target = tmp_path / "new" / "folder" / "data.bin"
    write_bytes_atomic(target, b"\x00\x01payload")
    assert target.read_bytes() == b"\x00\x01payload"
    write_text_atomic(target, "r\u00e9sum\u00e9\n")  # replaces, UTF-8
    assert target.read_bytes() == "r\u00e9sum\u00e9\n".encode("utf-8")
    assert sorted(p.name for p in target.parent.iterdir()) == ["data.bin"]


def test_new_file_gets_the_usual_permissions_not_mkstemps_0600(tmp_path):
    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "table.tsv", "a\n")
    finally:
        os.umask(old)
    assert (tmp_path / "table.tsv").stat().st_mode & 0o777 == 0o644


def test_failed_write_keeps_old_content_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "state.json"
    target.write_text("old\n")
    with pytest.raises(TypeError):
        write_bytes_atomic(target, "not bytes")  # fails inside the write, after the temp file exists
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_failed_rename_leaves_the_target_and_no_temporary(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "keep.txt").write_text("kept\n")
    with pytest.raises(OSError):
        write_text_atomic(target, "would replace a folder\n")  # os.replace onto a folder fails
    assert (target / "keep.txt").read_text() == "kept\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
