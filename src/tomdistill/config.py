"""Typed configuration, read from TOML: the one place defaults live.

Every field carries a description, which `tomdistill config show` prints above it. Sections:
scenarios, teacher, student, dataset, train, evaluate, plus the run's output folder and seed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, get_args

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, model_validator

from .augment import MAX_PERMUTATIONS
from .errors import ConfigError, describe_validation_error
from .models.base import SamplingSettings
from .tomlfiles import load_toml_file
from .tracking import NO_TRACKER, TRACKERS, TRACKING_LOGS, TRACKING_PROJECT, tracker_names


def _once_each(values: list[str]) -> list[str]:
    """The list without repeats, in first-named order: a split named twice is asked once."""
    return list(dict.fromkeys(values))


#: Split names; repeats are dropped so no scenario is asked (and paid for) twice.
SplitList = Annotated[list[str], AfterValidator(_once_each)]
#: Experiment trackers by transformers' names, checked when the config is read (tracking.py).
TrackerList = Annotated[list[str], AfterValidator(tracker_names)]


class ScenariosConfig(BaseModel):
    """Which scenario data to use besides the built-in library."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    libraries: list[Path] = Field(
        default_factory=list,
        description="Extra library files (TOML) with your own games and contexts; "
        "relative paths are read from the config file's folder.",
    )
    include: list[str] = Field(
        default_factory=list,
        description="Keep only scenarios whose id matches one of these patterns (e.g. 'team/*', '*/stag_hunt'); "
        "empty keeps all.",
    )


#: `target_modules` entry that stands for every linear layer of the blocks (PEFT's own name).
ALL_LINEAR = "all-linear"

#: How the decision is trained (train/decision.py): the reply's tokens, the soft-label loss, or both.
DecisionLoss = Literal["tokens", "soft", "soft+tokens"]
DECISION_LOSSES: tuple[str, ...] = get_args(DecisionLoss)


#: Named training recipes: the fields each sets before the config's own. `paper`: Lorè et al. (token
#: loss only, r 8, alpha 16, q/v, lr 5e-5, 3 epochs, batch 8 x 8 = 64).
TRAIN_PRESETS: dict[str, dict[str, object]] = {
    "cpu": {},
    "paper": {"decision_loss": "tokens", "r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"],
              "learning_rate": 5e-5, "epochs": 3, "batch_size": 8, "grad_accum": 8},
}
#: The preset a config without `preset` starts from.
DEFAULT_PRESET = "cpu"


class TrainConfig(BaseModel):
    """LoRA supervised fine-tuning of the student. Defaults: chosen by measurements of the 135M
    default student on 2 CPU cores (README, Training; benchmarks/README.md); `preset = "paper"`
    gives the paper's recipe."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    preset: str | None = Field(
        None, description=f"Start from a named preset ({', '.join(TRAIN_PRESETS)}); the fields set in the [train] "
        "table, then command-line flags, override it.",
    )
    r: int = Field(16, ge=1, description="LoRA rank.")
    alpha: int = Field(32, ge=1, description="LoRA alpha (scale = alpha / r).")
    dropout: float = Field(0.05, ge=0, lt=1, description="LoRA dropout.")
    target_modules: list[str] = Field(
        default_factory=lambda: [ALL_LINEAR], description="Modules that get LoRA weights; 'all-linear': every linear "
        "layer of the blocks, attention and MLP (PEFT's name for it; the output head is left out).",
    )
    learning_rate: float = Field(1e-3, gt=0, description="Peak learning rate (linear decay after the warm-up).")
    epochs: float = Field(2.0, gt=0, description="Passes over the data.")
    max_steps: int = Field(-1, description="Stop after this many optimizer steps (-1: run all epochs).")
    batch_size: int = Field(4, ge=1, description="Examples per device per step.")
    grad_accum: int = Field(1, ge=1, description="Gradient accumulation steps (effective batch = batch_size x this x devices).")
    max_length: int = Field(512, ge=16, description="Longest tokenised example (prompt + reply); longer ones are cut.")
    warmup_ratio: float = Field(0.0, ge=0, lt=1, description="Share of steps with a linear learning-rate warm-up.")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed for LoRA initialisation and data order; 0 to 2**32 - 1.")
    bf16: bool | None = Field(
        None,
        description="bfloat16 weights and compute. Default: on where the hardware runs bf16 natively (GPUs that "
        "support it, CPUs with AVX512-BF16 or AMX instructions), else float32.",
    )
    gradient_checkpointing: bool = Field(False, description="Trade compute for memory (slower; useful for big students on GPU).")
    packing: bool = Field(False, description="Pack several short examples into one sequence.")
    save_steps: int = Field(10, ge=1, description="Write a resumable checkpoint every this many steps.")
    logging_steps: int = Field(1, ge=1, description="Log the loss every this many steps.")
    decision_loss: DecisionLoss = Field(
        "soft+tokens",
        description="tokens: the reply's tokens only (the paper's SFT); soft: the cross-entropy of the student's "
        "P(action) against the teacher's exact distribution, at the decision token; soft+tokens: both, the "
        "decision token left to the soft term.",
    )
    decision_weight: float = Field(
        5.0, ge=0, description="Weight of the soft decision loss beside the token loss, in soft+tokens; 'soft' alone "
        "is not weighted.",
    )
    report_to: TrackerList = Field(
        default_factory=list,
        description=f"Experiment trackers the training logs its loss and learning rate to ({', '.join(TRACKERS)}); "
        f"empty: none ('{NO_TRACKER}' turns off those a config file names). tensorboard writes to the adapter "
        f"folder's {TRACKING_LOGS}/ (pip install 'tomdistill[tracking]'); the others log where their own settings "
        f"say, in project '{TRACKING_PROJECT}', the run named after the adapter folder. Changing only this never "
        "redoes a finished training of `tomdistill run`.",
    )

    @model_validator(mode="after")
    def _all_linear_alone(self) -> TrainConfig:
        if ALL_LINEAR in self.target_modules and len(self.target_modules) > 1:
            raise ValueError(f"target_modules: '{ALL_LINEAR}' already names every linear layer; give it alone")
        return self

    def lora_targets(self) -> str | list[str]:
        """`target_modules` as PEFT's LoraConfig takes it: 'all-linear' as a string, names as a list."""
        return ALL_LINEAR if self.target_modules == [ALL_LINEAR] else list(self.target_modules)

    @model_validator(mode="after")
    def _soft_loss_without_packing(self) -> TrainConfig:
        # Packing puts several examples in one row; the decision position is found per row.
        if self.packing and self.decision_loss != "tokens":
            raise ValueError("packing = true works with decision_loss = 'tokens' only")
        return self


def resolve_train_config(config: TrainConfig, overrides: dict[str, object] | None = None) -> TrainConfig:
    """Preset values, then the fields the config sets, then command-line overrides."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    preset = overrides.get("preset", config.preset)
    if preset is not None and preset not in TRAIN_PRESETS:
        raise ConfigError("train config", f"unknown preset '{preset}'; known: {', '.join(TRAIN_PRESETS)}", field="preset")
    values = dict(TRAIN_PRESETS.get(preset or DEFAULT_PRESET, {}))
    values |= config.model_dump(exclude_unset=True) | overrides
    values["preset"] = preset
    return TrainConfig.model_validate(values)


DType = Literal["auto", "float32", "bfloat16", "float16"]
EVAL_SPLITS = ["train", "heldout_context", "heldout_game", "heldout_pgg"]


class RaySettings(BaseModel):
    """Where a model runs: in this process, or as replicas (Ray actors) on a Ray cluster."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    replicas: int = Field(1, ge=1, description="Copies of the model, each a Ray actor; more than 1 (or an address) runs them on Ray (pip install 'tomdistill[ray]').")
    ray_address: str | None = Field(None, description="Ray cluster to join (e.g. ray://head:10001, or auto on a cluster node); unset: a local Ray instance when replicas > 1.")
    cpus_per_replica: float = Field(1.0, gt=0, description="CPU cores Ray reserves for each replica (its torch threads).")
    gpus_per_replica: float = Field(0.0, ge=0, description="GPUs Ray reserves for each replica (e.g. 2 for a vLLM replica with tensor parallelism over 2 GPUs).")


class TeacherConfig(BaseModel):
    """The large model whose answers are distilled: sampled with motivations (the training data),
    and scored exactly on every evaluation split (its reference decisions)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    model: str = Field("default:teacher", description="Model spec: default:teacher, hf:FOLDER, openai:MODEL, ...; planted:default is a positive control with a known behaviour (docs/planted.md).")
    base_url: str | list[str] | None = Field(None, description="Server URL for openai: models (the key comes from OPENAI_API_KEY); a list of servers of the same model shares the requests, each to the least busy.")
    protocol: Literal["answer", "motivated"] = Field("motivated", description="How the teacher is asked.")
    samples: int = Field(4, ge=1, description="Sampled answers (with motivations) per scenario for the dataset "
                                                "(the paper used 300); also per evaluation scenario when the "
                                                "teacher cannot be scored.")
    splits: SplitList = Field(
        default_factory=lambda: ["train"],
        description="Splits the teacher is sampled on (motivations; the dataset reads train). Its decisions on "
        "every evaluation split are scored exactly, whatever this says.",
    )
    sampling: SamplingSettings = Field(
        default_factory=lambda: SamplingSettings(max_new_tokens=96),
        description="Sampling of the training answers: temperature (paper: 0.8), top_p, max_new_tokens.",
    )
    batch_size: int | None = Field(None, ge=1, description="Prompts per batch on hf backends.")
    dtype: DType = Field("auto", description="hf backends: auto (float32 when scoring, else bf16 where the hardware has it), float32, bfloat16, float16.")
    concurrency: int = Field(8, ge=1, description="Requests in flight for openai: models.")
    ray: RaySettings = Field(default_factory=RaySettings, description="Replicas on a Ray cluster (hf, default and vllm models).")


class StudentConfig(BaseModel):
    """The small model, measured before (base) and after (fine-tuned) distillation."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    model: str = Field("default:student", description="Student spec with local weights: default:student or hf:FOLDER.")
    mode: Literal["sample", "score"] = Field(
        "score", description="score: exact P(action) in one pass (cheap); sample: N sampled replies per scenario."
    )
    protocol: Literal["answer", "motivated"] = Field("answer", description="How the students are asked (paper: answer only).")
    samples: int = Field(20, ge=1, description="Replies per scenario in sample mode.")
    sampling: SamplingSettings = Field(
        default_factory=SamplingSettings,
        description="Sampling settings in sample mode; the temperature must be evaluate.temperature.",
    )
    batch_size: int | None = Field(None, ge=1, description="Prompts per batch.")
    dtype: DType = Field("auto", description="auto (float32 when scoring, else bf16 where the hardware has it), float32, bfloat16, float16.")
    ray: RaySettings = Field(default_factory=RaySettings, description="Replicas on a Ray cluster.")


class DatasetConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    prompt_protocol: Literal["answer", "motivated"] = Field("answer", description="Protocol of the training prompts.")
    require_motivation: bool = Field(False, description="Leave out teacher answers without a motivation.")
    label_permutations: int = Field(
        0, ge=0, le=MAX_PERMUTATIONS, description="Training-only copies of each training matrix scenario with its options under "
        "other letters (every other copy in the other order), the teacher's target mapped along (augment.py).",
    )
    exclude: list[str] = Field(
        default_factory=list, description="Scenario ids (patterns like 'team/*') kept out of the training data, "
        "e.g. one training context for a leave-one-context-out check; they are still evaluated.",
    )
    paraphrases: int = Field(
        0, ge=0, description="Training-only copies of each training scenario told with up to this many of the "
        "library's paraphrased framings of its context ([[paraphrase]]), with the teacher's answer as it is.",
    )


class EvaluateConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    splits: SplitList = Field(default_factory=lambda: list(EVAL_SPLITS), description="Splits base and student are measured on.")
    bootstrap: int = Field(2000, ge=0, description="Bootstrap resamples for gap_closed intervals.")
    temperature: float = Field(
        0.8, ge=0, description="The one temperature teacher, base and student are compared at: their action "
        "distributions are scored at it (the paper sampled at 0.8)."
    )


class Config(BaseModel):
    """The whole tomdistill configuration: `tomdistill run CONFIG.toml` reads all of it."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    out: Path = Field(Path("tomdistill-run"), description="Output folder of `tomdistill run` (store, data, adapter, report).")
    seed: int = Field(0, ge=0, le=2**32 - 1, description="Seed of every stage (sampling, training, bootstrap); 0 to 2**32 - 1.")
    scenarios: ScenariosConfig = Field(default_factory=ScenariosConfig)
    teacher: TeacherConfig = Field(default_factory=TeacherConfig)
    student: StudentConfig = Field(default_factory=StudentConfig)
    dataset: DatasetConfig = Field(default_factory=DatasetConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)

    @model_validator(mode="after")
    def _one_temperature(self) -> Config:
        # Sampled students are compared with scored roles: both must describe the distribution at
        # one temperature, or the gap between them would partly be the temperature's.
        if self.student.mode == "sample" and self.student.sampling.temperature != self.evaluate.temperature:
            raise ValueError(f"student.sampling.temperature ({self.student.sampling.temperature:g}) must equal "
                             f"evaluate.temperature ({self.evaluate.temperature:g}): every role is compared at one")
        return self


def config_toml(config: Config) -> str:
    """The config as TOML, each field preceded by its description (what `tomdistill config show` prints)."""
    import tomli_w

    lines: list[str] = ["# tomdistill run configuration; every field is optional (these are the defaults).", ""]

    def emit(model: BaseModel, prefix: str) -> None:
        scalars = {k: v for k, v in model.model_dump(mode="json", exclude_none=False).items()
                   if not isinstance(getattr(model, k), BaseModel)}
        if prefix:
            lines.append(f"[{prefix}]")
        for name, value in scalars.items():
            field = type(model).model_fields[name]
            if field.description:
                lines.append(f"# {field.description}")
            if value is None:
                lines.append(f"# {name} =   (not set)")
            else:
                lines.append(tomli_w.dumps({name: value}).strip())
        lines.append("")
        for name in type(model).model_fields:
            child = getattr(model, name)
            if isinstance(child, BaseModel):
                emit(child, f"{prefix}.{name}" if prefix else name)

    emit(config, "")
    return "\n".join(lines)


def load_config(path: Path | str | None) -> Config:
    """The config in `path` (defaults where it is silent), or the defaults when `path` is None."""
    if path is None:
        return Config()
    path = Path(path)
    data = load_toml_file(path, ConfigError, example="the config file (e.g. run.toml)")
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        field, message = describe_validation_error(exc)
        raise ConfigError(path, message, field=field) from None
    base = path.parent
    config.train = resolve_train_config(config.train)
    config.scenarios.libraries = [p if p.is_absolute() else base / p for p in config.scenarios.libraries]
    return config
