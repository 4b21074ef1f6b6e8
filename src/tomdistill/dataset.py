"""Teacher run -> supervised fine-tuning data: one chat example per valid teacher answer.

Each example pairs the scenario prompt as the student will be asked it (the `answer` protocol by
default) with the teacher's decision and motivation as the assistant reply:

    C
    Motivation: <the teacher's motivation>

The decision stands alone at the very start of the reply, exactly where the `answer` protocol
and score mode read it, so training on motivated answers moves the probability that score mode
measures. Only scenarios of the chosen splits (default: `train`) go in; held-out scenarios never
do, whatever the teacher run holds. Output folder:

    train.jsonl      {"messages": [system, user, assistant]} per line (OpenAI fine-tuning, LLaMA-Factory)
    train.parquet    every column below, which `datasets.load_dataset(folder)` reads through README.md
    README.md        the dataset card; dataset_info.json: LLaMA-Factory's entry for train.jsonl
    hf/              a Hugging Face `datasets` folder: prompt / completion (TRL), messages, scenario, split,
                     decision_target (the teacher's P(action) for the soft-label loss, targets.py), ...
    manifest.json    teacher run, counts per scenario, dropped samples, parser version, reply format
    .tomdistill      the marker that lets a later build replace this folder (see outdirs.py)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .augment import mapped_target, paraphrased, permuted
from .dataset_card import write_hub_files
from .errors import TomdistillError
from .jsonfiles import load_json_file
from .outdirs import check_dir, holds_only, replace_owned_dir
from .samples import run_scenarios
from .scenarios import Library, Scenario, render
from .scenarios.library import id_matches
from .scenarios.parse import PARSER_VERSION
from .scenarios.protocols import Protocol, reason_first
from .store import Run, Store
from .targets import DecisionTargets, teacher_targets

MANIFEST = "manifest.json"
DATASET_KIND = "dataset"
REPLY_FORMAT = "{decision}\nMotivation: {motivation}"
#: What an example holds. 2: the teacher's P(action) for the soft-label loss (decision_target).
DATASET_VERSION = 2
#: The column holding each example's soft-label target (JSON {action: P}, '' without one).
TARGET_COLUMN = "decision_target"


def teacher_reply(decision: str, motivation: str | None) -> str:
    """The assistant reply the student learns: the decision first, alone on its line."""
    if not motivation:
        return decision
    return REPLY_FORMAT.format(decision=decision, motivation=" ".join(motivation.split()))


@dataclass
class DatasetManifest:
    teacher_run: str
    teacher_model: str
    store: str
    splits: list[str]
    prompt_protocol: str
    reply_format: str
    parser_version: str
    examples: int
    per_scenario: dict[str, int] = field(default_factory=dict)
    per_split: dict[str, int] = field(default_factory=dict)
    dropped_invalid: int = 0
    dropped_other_split: int = 0
    dropped_without_motivation: int = 0
    decisions: dict[str, int] = field(default_factory=dict)
    #: Where the soft-label targets come from (targets.py) and the temperature they hold at.
    decision_targets: str | None = None
    target_temperature: float | None = None
    #: Examples that carry a target (choice scenarios the targets cover).
    with_target: int = 0
    #: Relabelled copies per training matrix scenario (augment.py); their examples count in `examples`.
    label_permutations: int = 0
    #: Paraphrased framings used per training scenario (at most); their examples count in `examples`.
    paraphrases: int = 0
    #: Scenario-id patterns kept out, and the samples that left out.
    exclude: list[str] = field(default_factory=list)
    dropped_excluded: int = 0


def _example(scenario: Scenario, decision: str, reply: str, protocol: Protocol, target: str,
             sample_index: int, augmented: str = "") -> dict[str, Any]:
    """One training example: `scenario` asked in `protocol`, answered with `reply` (which starts with `decision`)."""
    prompt = render(scenario, protocol)
    completion = [{"role": "assistant", "content": reply}]
    return {
        "prompt": prompt,
        "completion": completion,
        "messages": prompt + completion,
        "scenario": scenario.id,
        "split": scenario.split,
        "decision": decision,
        "teacher_sample_index": sample_index,
        # The teacher's P(action) for this scenario as a JSON object ('' for amounts): the soft-label target.
        TARGET_COLUMN: target,
        # '' for the teacher's own answers; the augmentation that made the example otherwise (augment.py).
        "augmented": augmented,
    }


def build_dataset(
    store: Store,
    run: Run,
    library: Library,
    out: Path,
    *,
    splits: tuple[str, ...] = ("train",),
    prompt_protocol: Protocol = "answer",
    require_motivation: bool = False,
    key: str | None = None,
    targets_run: Run | None = None,
    label_permutations: int = 0,
    paraphrases: int = 0,
    exclude: Sequence[str] = (),
) -> DatasetManifest:
    """Write the SFT data for `run` into `out` and return its manifest.

    Each example carries the teacher's distribution over the actions for its scenario: exact from
    `targets_run` (a score run of the same teacher) where it has them, else smoothed from `run`'s
    own answers. `label_permutations` adds that many relabelled copies of each training matrix
    scenario (augment.py), one example each, whose decision is a teacher answer mapped along;
    `paraphrases` adds one example per library paraphrase of the context (up to that many) with a
    teacher answer as it is. Scenarios matching an `exclude` pattern stay out, augmented or not.
    `out` must be new, empty, or a dataset folder tomdistill wrote, which is then replaced; `key`
    (default: the run name) goes into its marker."""
    if run.mode != "sample":
        raise TomdistillError(f"run '{run.name}' is a {run.mode}-mode run; a dataset needs sampled teacher replies")
    if reason_first(prompt_protocol):  # the decision-first replies below would contradict such a prompt
        raise TomdistillError(f"prompt protocol '{prompt_protocol}' is reason-first; training examples are written "
                              "decision first, so use 'answer' or 'motivated'")
    check_dir(out, DATASET_KIND, legacy=is_dataset_folder)  # before any work; the old folder stays until the new one is due
    known_splits = library.splits()
    for split in splits:
        if split not in known_splits:
            raise TomdistillError(f"unknown split '{split}'; known splits: {', '.join(known_splits)}")
    scenarios = {s.id: s for s in run_scenarios(store, run, library)}
    trained = [s for s in scenarios.values() if s.split in splits and not id_matches(s.id, exclude)]
    targets = teacher_targets(store, run, trained, targets_run)
    manifest = DatasetManifest(
        teacher_run=run.name, teacher_model=run.model, store=str(store.path.resolve()), splits=list(splits),
        prompt_protocol=prompt_protocol, reply_format=REPLY_FORMAT, parser_version=PARSER_VERSION, examples=0,
        decision_targets=targets.source, target_temperature=targets.temperature, exclude=list(exclude),
    )
    examples = _examples(store, run, scenarios, manifest, targets, require_motivation)
    examples += (_permuted_examples(examples, scenarios, targets, label_permutations, prompt_protocol)
                 + _paraphrased_examples(examples, scenarios, library, paraphrases, prompt_protocol))
    if not examples:
        raise TomdistillError(
            f"run '{run.name}' has no valid sample in splits {', '.join(splits)} "
            f"({manifest.dropped_invalid} invalid, {manifest.dropped_other_split} in other splits)"
        )
    manifest.examples = len(examples)
    manifest.per_scenario = dict(Counter(e["scenario"] for e in examples))
    manifest.per_split = dict(Counter(e["split"] for e in examples))
    manifest.decisions = dict(Counter(e["decision"] for e in examples))
    manifest.with_target = sum(bool(e[TARGET_COLUMN]) for e in examples)
    manifest.label_permutations, manifest.paraphrases = label_permutations, paraphrases
    _write(out, examples, manifest, key or run.name)
    return manifest


def _examples(store: Store, run: Run, scenarios: dict[str, Scenario], manifest: DatasetManifest,
              targets: DecisionTargets, require_motivation: bool) -> list[dict[str, Any]]:
    """The examples of the run's usable samples; what was left out is counted in `manifest`."""
    examples: list[dict[str, Any]] = []
    for sample in store.samples(run.id):
        scenario = scenarios[sample.scenario]
        # Both the library's split and the stored one must allow it: no held-out leak either way.
        if scenario.split not in manifest.splits or sample.split not in manifest.splits:
            manifest.dropped_other_split += 1
        elif id_matches(scenario.id, manifest.exclude):
            manifest.dropped_excluded += 1
        elif not sample.valid or sample.action is None:
            manifest.dropped_invalid += 1
        elif require_motivation and not sample.motivation:
            manifest.dropped_without_motivation += 1
        else:
            decision = str(sample.action)
            examples.append(_example(scenario, decision, teacher_reply(decision, sample.motivation),
                                     manifest.prompt_protocol, targets.encoded(scenario.id), sample.sample_index))  # type: ignore[arg-type]
    return examples


def _permuted_examples(examples: list[dict[str, Any]], scenarios: dict[str, Scenario], targets: DecisionTargets,
                       count: int, protocol: Protocol) -> list[dict[str, Any]]:
    """One example per relabelled copy of each scenario the examples cover: the prompt under the
    new letters, the k-th teacher answer's decision mapped along (alone: the motivation names the
    old letters), and the mapped target."""
    out = []
    for scenario_id, rows in _by_scenario(examples).items():
        target = targets.probs.get(scenario_id)
        for k, variant in enumerate(permuted(scenarios[scenario_id], count if target else 0)):
            row = rows[k % len(rows)]
            decision = variant.labels[row["decision"]]
            out.append(_example(variant.scenario, decision, decision, protocol,
                                json.dumps(mapped_target(target, variant.labels)), row["teacher_sample_index"],
                                augmented="label_permutation"))
    return out


def _paraphrased_examples(examples: list[dict[str, Any]], scenarios: dict[str, Scenario], library: Library,
                          count: int, protocol: Protocol) -> list[dict[str, Any]]:
    """One example per paraphrase of each covered scenario's context: the prompt in the new words,
    the k-th teacher answer (decision and motivation) and the target as they are."""
    if count <= 0:
        return []
    out = []
    for scenario_id, rows in _by_scenario(examples).items():
        scenario = scenarios[scenario_id]
        for k, variant in enumerate(paraphrased(scenario, library.paraphrases(scenario.context.id), count)):
            row = rows[k % len(rows)]
            out.append(_example(variant.scenario, row["decision"], row["completion"][0]["content"], protocol,
                                row[TARGET_COLUMN], row["teacher_sample_index"], augmented="paraphrase"))
    return out


def _by_scenario(examples: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """The teacher's own examples grouped by scenario, in order (augmented ones left out)."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for e in examples:
        if not e["augmented"]:
            grouped.setdefault(e["scenario"], []).append(e)
    return grouped


#: What a dataset folder held before markers existed: an unmarked folder with anything else is not
#: replaced (frozen: files written since, e.g. train.parquet, only ever appear in marked folders).
DATASET_FILES = ("train.jsonl", "hf", MANIFEST)


def is_dataset_folder(folder: Path) -> bool:
    """A dataset folder written before markers existed: its manifest.json is tomdistill's, and it
    holds nothing but DATASET_FILES (migration rule)."""
    if not holds_only(folder, DATASET_FILES):
        return False
    try:
        data = load_json_file(folder / MANIFEST, "dataset manifest")
    except TomdistillError:
        return False
    return isinstance(data, dict) and {"teacher_run", "reply_format", "parser_version"} <= set(data)


def _write(out: Path, examples: list[dict[str, Any]], manifest: DatasetManifest, key: str) -> None:
    import datasets

    datasets.disable_progress_bars()  # for Python callers too (the CLI silences them at start)
    replace_owned_dir(out, DATASET_KIND, key=key, legacy=is_dataset_folder)
    with (out / "train.jsonl").open("w") as fh:
        for e in examples:
            fh.write(json.dumps({"messages": e["messages"]}, ensure_ascii=False) + "\n")
    table = datasets.Dataset.from_list(examples)
    table.save_to_disk(str(out / "hf"))
    write_hub_files(out, table, manifest)
    (out / MANIFEST).write_text(json.dumps(asdict(manifest), indent=2))


def load_manifest(folder: Path) -> DatasetManifest:
    path = folder / MANIFEST
    if not path.is_file():
        raise TomdistillError(f"{folder}: not a tomdistill dataset folder (no {MANIFEST}); build one with `tomdistill dataset`")
    data = load_json_file(path, "dataset manifest")
    try:
        return DatasetManifest(**data)
    except TypeError:  # not an object, or not the fields tomdistill writes
        raise TomdistillError(f"{path}: not a tomdistill dataset manifest; build the folder again with "
                              "`tomdistill dataset`") from None


def training_columns(column_names: Sequence[str], soft: bool) -> list[str]:
    """The dataset columns training keeps: TRL's prompt/completion, plus the soft-label targets.
    A soft loss on a dataset built before targets existed is refused: it would train on nothing."""
    if soft and TARGET_COLUMN not in column_names:
        raise TomdistillError("the dataset has no decision targets (built by an older tomdistill); "
                              "build it again with `tomdistill dataset` for a soft decision loss")
    return ["prompt", "completion"] + ([TARGET_COLUMN] if soft else [])


def load_training_data(folder: Path):
    """The `datasets.Dataset` of a dataset folder, with prompt/completion columns for TRL."""
    import datasets

    load_manifest(folder)
    return datasets.load_from_disk(str(folder / "hf"))
