"""Atomic writes leave either the old file or the new one, never half of one."""

from __future__ import annotations

import hashlib

import pytest

from companion.io import (
    atomic_write,
    atomic_write_folder,
    atomic_write_text,
    bytes_digest,
    file_digest,
    sha256_file,
)


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


def test_failed_write_removes_the_folders_it_created(tmp_path) -> None:
    (tmp_path / "a").mkdir()

    def broken(tmp) -> None:
        tmp.write_text("half")
        raise OSError("network down")

    with pytest.raises(OSError, match="network down"):
        atomic_write(tmp_path / "a" / "b" / "c" / "f.txt", broken)
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")) == ["a"]


def test_failed_write_keeps_a_created_folder_that_was_filled_meanwhile(tmp_path) -> None:
    def broken(tmp) -> None:
        (tmp.parent / "other.txt").write_text("someone else's")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        atomic_write(tmp_path / "new" / "f.txt", broken)
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["other.txt"]


def test_atomic_write_folder_replaces_a_folder_whole_or_not_at_all(tmp_path) -> None:
    folder = tmp_path / "new" / "model"

    def write(name: str, fail: bool = False):  # noqa: ANN202
        def fill(tmp) -> None:
            (tmp / f"{name}.bin").write_text(name)
            if fail:
                raise OSError("disk full")

        return fill

    with pytest.raises(OSError, match="disk full"):
        atomic_write_folder(folder, write("half", fail=True))
    assert list(tmp_path.iterdir()) == []  # no temporary folder, no created parent
    atomic_write_folder(folder, write("first"))
    with pytest.raises(OSError, match="disk full"):
        atomic_write_folder(folder, write("half", fail=True))
    assert [p.name for p in folder.iterdir()] == ["first.bin"]
    atomic_write_folder(folder, write("second"))
    assert [p.name for p in folder.iterdir()] == ["second.bin"]
    assert [p.name for p in folder.parent.iterdir()] == ["model"]


def test_sha256_file_matches_hashlib(tmp_path) -> None:
    path = tmp_path / "b.bin"
    data = bytes(range(256)) * 5000
    path.write_bytes(data)
    assert sha256_file(path, chunk=1000) == hashlib.sha256(data).hexdigest()


def test_file_digest_md5_matches_hashlib(tmp_path) -> None:
    path = tmp_path / "b.bin"
    path.write_bytes(b"news" * 1000)
    assert file_digest(path, "md5") == hashlib.md5(b"news" * 1000).hexdigest()


def test_bytes_digest_hand_values() -> None:
    assert bytes_digest(b"abc") == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    )
    assert bytes_digest(b"", "md5") == "d41d8cd98f00b204e9800998ecf8427e"
