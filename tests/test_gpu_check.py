"""The prepared GPU check (benchmarks/gpu_check/): what can be checked without a GPU or network.

pack.py must carry what the offline GPU machine lacks, refuse an unmet requirement and a bundle
too big to travel, and never pack weights; check.py must turn a failing step into a failed row
and a nonzero exit, whatever the other steps do. The GPU run itself is benchmarks/README.md, 10.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

import pytest

GPU_CHECK = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_check"


def _load(name: str) -> ModuleType:
    """A module of benchmarks/gpu_check by path (benchmarks/ is no package)."""
    spec = importlib.util.spec_from_file_location(f"gpu_check_{name}", GPU_CHECK / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def pack() -> ModuleType:
    return _load("pack")


@pytest.fixture(scope="module")
def check() -> ModuleType:
    return _load("check")


def _wheel(folder: Path, name: str, version: str, requires: list[str]) -> Path:
    """A wheel holding only its METADATA, which is all the requirement check reads."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    lines = [f"Name: {name}", f"Version: {version}", *(f"Requires-Dist: {r}" for r in requires)]
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr(f"{name}-{version}.dist-info/METADATA", "Metadata-Version: 2.1\n" + "\n".join(lines) + "\n")
    return path


def test_pack_carries_what_the_device_lacks_at_the_versions_tomdistill_needs(pack) -> None:
    from packaging.requirements import Requirement

    pins = {Requirement(spec).name: next(iter(Requirement(spec).specifier)).version for spec in pack.WHEELS}
    for name in ("trl", "datasets", "pydantic", "pydantic-core", "tomli-w"):
        assert name in pins, name
    hf = {Requirement(r).name: Requirement(r) for r in pack.project_requirements()}
    assert hf["transformers"].specifier.contains(pins["transformers"])  # the device's 5.17 would not do
    assert not hf["transformers"].specifier.contains(pack.DEVICE_VERSIONS["transformers"])
    assert "gguf" not in hf  # only the conversion of default: models needs it
    assert "tomdistill" not in hf and hf["datasets"].specifier.contains(pins["datasets"])  # via tomdistill[data]


def test_requirement_check_flags_missing_and_out_of_range_and_skips_other_platforms(pack, tmp_path) -> None:
    wheel = _wheel(tmp_path, "demo", "1.0", ["trl>=1.0", "huggingface-hub>=99", "nowhere-pkg", "pyarrow>=21",
                                             "pywin32; sys_platform == 'win32'", "rich; extra == 'fancy'"])
    needs = {wheel.name: pack.wheel_requirements(wheel)}
    unmet, unverified = pack.unmet_requirements(needs, {"trl": "1.16.0"}, pack.Target("3.12"))
    assert len(unmet) == 2
    assert any("huggingface-hub>=99" in line and "1.33.0" in line for line in unmet)  # known version, too old
    assert any("nowhere-pkg" in line and "neither carried" in line for line in unmet)
    assert unverified == [f"{wheel.name} needs pyarrow>=21; installed there, version not read"]


def test_size_check_refuses_a_bundle_or_tree_too_big_to_travel(pack) -> None:
    mib = pack.MIB
    assert pack.size_problems(20 * mib, 4 * mib) == []
    assert pack.size_problems(61 * mib, 1 * mib) == ["bundle 61.0 MiB is over 60 MiB"]
    [problem] = pack.size_problems(59 * mib, 6 * mib)
    assert "65.0 MiB is over 64 MiB" in problem


def test_student_copy_leaves_the_weights_behind(pack, tmp_path) -> None:
    source = tmp_path / "model"
    source.mkdir()
    for name in ("config.json", "tokenizer.json", "chat_template.jinja", "model.safetensors", "pytorch_model.bin"):
        (source / name).write_text("{}")
    copied = pack.copy_student(source, tmp_path / "bundle" / "student")
    assert sorted(p.name for p in copied) == ["chat_template.jinja", "config.json", "tokenizer.json"]
    with pytest.raises(SystemExit, match="no config.json"):
        pack.copy_student(tmp_path / "bundle" / "missing", tmp_path / "elsewhere")


def test_a_failing_step_is_a_failed_row_and_the_others_still_run(check) -> None:
    def broken():
        raise RuntimeError("CUDA error: device-side assert\nmore lines")

    def wrong():
        raise check.CheckFailed("max abs dP = 2.0e-02")

    rows = [check.run_step("score", lambda: ("fine | ok", {"x": 1})), check.run_step("train", broken),
            check.run_step("agreement", wrong)]
    assert [r.passed for r in rows] == [True, False, False]
    assert rows[1].detail == "RuntimeError: CUDA error: device-side assert"
    table = check.markdown_table(rows)
    assert "| train | **no** |" in table and "| agreement | **no** |" in table
    assert "fine / ok" in table  # a pipe in a detail would break the table
    assert check.exit_code(rows) == 1 and check.exit_code(rows[:1]) == 0 and check.exit_code([]) == 1


def test_only_adds_the_steps_a_step_needs(check) -> None:
    assert check.selected(["adapter"]) == ["student", "score", "train", "adapter"]
    assert check.selected(None) == list(check.STEPS)
    with pytest.raises(SystemExit, match="unknown step"):
        check.selected(["nope"])


def test_check_script_exits_nonzero_and_says_why_without_a_bundle(tmp_path) -> None:
    out = tmp_path / "gpu_check.json"
    proc = subprocess.run([sys.executable, str(GPU_CHECK / "check.py"), "--device", "cpu", "--only", "student",
                           "--bundle", str(tmp_path / "missing"), "--json", str(out)],
                          capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 1, proc.stderr
    report = json.loads(out.read_text())
    assert report["passed"] is False
    [row] = report["rows"]
    assert row["check"] == "student" and not row["passed"] and "no config.json" in row["detail"]
    assert "| student | **no** |" in proc.stdout
