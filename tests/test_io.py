"""Atomic writes leave either the old file or the new one, never half of one."""

from __future__ import annotations

import hashlib

import pytest

from companion.io import atomic_write, atomic_write_text, file_digest, sha256_file


def test_atomic_write_text_replaces_content(tmp_path) -> None:
    path = tmp_path / "sub" / "f.txt"
    atomic_write_text(path, "first")
    atomic_write_text(path, "second")
    assert path.read_text() == "second"
    assert [p.name for p in path.parent.iterdir()] == ["f.txt"]


def test_failed_write_keeps_the_old_file_and_no_temporary(tmp_path) -> None:
    path = tmp_path / "f.txt"
    atomic_write_text(path, "old")

    def broken(tmp) -> None:
        tmp.write_text("half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        atomic_write(path, broken)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["f.txt"]


def test_sha256_file_matches_hashlib(tmp_path) -> None:
    path = tmp_path / "b.bin"
    data = bytes(range(256)) * 5000
    path.write_bytes(data)
    assert sha256_file(path, chunk=1000) == hashlib.sha256(data).hexdigest()


def test_file_digest_md5_matches_hashlib(tmp_path) -> None:
    path = tmp_path / "b.bin"
    path.write_bytes(b"news" * 1000)
    assert file_digest(path, "md5") == hashlib.md5(b"news" * 1000).hexdigest()
