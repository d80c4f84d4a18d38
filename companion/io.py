"""Small file helpers: atomic writes and checksums, so nothing is ever left half-written."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary file beside ``path``, then rename it into place.

    If ``write`` fails, the temporary file and any folders created for ``path`` are removed.
    """
    path = Path(path)
    with removing_created_folders(path.parent):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            write(Path(tmp_name))
            os.replace(tmp_name, path)
        finally:
            Path(tmp_name).unlink(missing_ok=True)


def atomic_write_folder(folder: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a temporary folder beside ``folder``, then rename it into place.

    An existing ``folder`` is moved aside, replaced, then deleted. If ``write`` fails, the
    temporary folder and any parents created for ``folder`` are removed, and ``folder``
    stays as it was.
    """
    folder = Path(folder)
    with removing_created_folders(folder.parent):
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".tmp", dir=folder.parent))
        try:
            write(tmp)
            _swap_in(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)


def _swap_in(tmp: Path, folder: Path) -> None:
    """Rename the folder ``tmp`` to ``folder``; an existing ``folder`` is moved aside first."""
    if not folder.exists():
        os.replace(tmp, folder)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", suffix=".old", dir=folder.parent))
    try:
        os.replace(folder, old)  # a folder may be renamed onto an empty one
        try:
            os.replace(tmp, folder)
        except BaseException:
            os.replace(old, folder)
            raise
    except BaseException:
        with contextlib.suppress(OSError):
            old.rmdir()
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def removing_created_folders(folder: Path) -> Iterator[None]:
    """Run the block; if it fails, remove ``folder`` and its parents that did not exist before."""
    folder = Path(folder)
    created = [p for p in (folder, *folder.parents) if not p.exists()]  # deepest first
    try:
        yield
    except BaseException:
        for made in created:
            with contextlib.suppress(OSError):  # not empty: something else wrote there meanwhile
                made.rmdir()
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def _hasher(algorithm: str) -> hashlib._Hash:
    """A ``hashlib`` object (md5 is flagged as not for security: only to match publishers)."""
    return hashlib.new(algorithm, usedforsecurity=algorithm != "md5")


def file_digest(path: Path, algorithm: str = "sha256", chunk: int = 1 << 20) -> str:
    """A file's hex digest with a ``hashlib`` algorithm (md5 only to match publishers)."""
    digest = _hasher(algorithm)
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def bytes_digest(data: bytes, algorithm: str = "sha256") -> str:
    """The hex digest of ``data`` with a ``hashlib`` algorithm."""
    digest = _hasher(algorithm)
    digest.update(data)
    return digest.hexdigest()


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """The sha256 hex digest of a file's bytes."""
    return file_digest(path, "sha256", chunk)
