"""`tomdistill run`: the whole paper pipeline in one resumable command.

    teacher (motivated, sampled on train) -> teacher_score (its exact decisions on every split)
    -> dataset (train split) -> LoRA training of the student
    -> base and fine-tuned student measured on every evaluation split -> eval.json -> report

Each stage has a key: a hash of its settings and of the keys of the stages it reads. A stage
whose key matches the one recorded in `pipeline.json` and whose outputs exist is skipped, so a
re-run after an interruption, or after changing only the evaluation, redoes nothing finished.
Elicitation stages resume sample by sample and training from its last checkpoint; `--force
STAGE` redoes one stage (and so everything after it). The output folder also gets a
`manifest.json`: the config, package versions, model details and file hashes, seeds and timings.

The output folder and its dataset/, adapter/ and report/ folders carry tomdistill's marker
(outdirs.py); a folder of the user's is refused before any stage runs, never written into.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .config import Config, StudentConfig, TeacherConfig
from .errors import TomdistillError
from .jsonfiles import load_json_file
from .memory import PeakMemory, process_peak_mib, release_freed_memory
from .models.base import SamplingSettings
from .outdirs import Legacy, check_dir, claim_dir, holds_only, replace_owned_dir
from .progress import progress_bar
from .scenarios import Scenario, load_library, prompt_hash, render
from .tracking import check_trackers
from .versions import package_versions

STAGES = ("teacher", "teacher_score", "dataset", "train", "base", "student", "evaluate", "report")
STATE_FILE = "pipeline.json"
MANIFEST_FILE = "manifest.json"
STORE_FILE = "tomdistill.db"
RUN_KIND, REPORT_KIND = "run", "report"  # the kinds in the .tomdistill markers (outdirs.py)
OUT_HINT = "pick a new --out for this run"


def _read_state(path: Path) -> dict[str, dict[str, Any]] | None:
    """pipeline.json's stage records, or None when it is absent or not one tomdistill wrote."""
    try:
        data = load_json_file(path, "pipeline state")
    except TomdistillError:
        return None
    ours = isinstance(data, dict) and data and all(k in STAGES and isinstance(v, dict) for k, v in data.items())
    return data if ours else None


STORE_FILES = tuple(STORE_FILE + suffix for suffix in ("", "-wal", "-shm", "-journal"))
#: What a run writes in its folder; an unmarked folder holding anything else is not taken as a run.
RUN_FILES = (*STORE_FILES, STATE_FILE, MANIFEST_FILE, "dataset", "adapter", "eval.json", "report")


# Migration rule for folders written before markers existed: a run folder is ours when it holds
# nothing but RUN_FILES, its tomdistill.db (if any) is a tomdistill store, and it has a valid
# pipeline.json or (a run stopped during its first stage) nothing but the store. Its sub-folders
# follow their own kinds' rules (dataset.py, train/folders.py, evaluate/report.py). Claiming marks them.
def _is_run_folder(folder: Path) -> bool:
    from .store import is_store

    if not holds_only(folder, RUN_FILES):
        return False
    store = folder / STORE_FILE
    # Read-only, before anything is marked: someone's own SQLite file named tomdistill.db does not
    # make their folder ours. (A link is left to check_dir, which refuses it by name.)
    if store.exists() and not store.is_symlink() and not is_store(store):
        return False
    if _read_state(folder / STATE_FILE) is not None:
        return True
    names = set(os.listdir(folder))
    return STORE_FILE in names and names <= set(STORE_FILES)


def _key(*parts: Any) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _prompts_key(scenarios: list[Scenario], protocol: str) -> str:
    """Changes whenever the wording of any of these scenarios changes (or the set changes)."""
    return _key([prompt_hash(render(s, protocol)) for s in scenarios])  # type: ignore[arg-type]


@dataclass
class StageRecord:
    key: str
    seconds: float
    finished: str
    skipped: bool = False
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class PipelineResult:
    out: Path
    stages: dict[str, StageRecord]
    eval_json: Path
    report_dir: Path
    peak_rss_mb: float


class Pipeline:
    """Runs the stages in order, skipping those whose key and outputs are already there."""

    def __init__(self, config: Config, out: Path, *, force: set[str] = frozenset(), log: Callable[[str], None] = print):
        unknown = set(force) - set(STAGES)
        if unknown:
            raise TomdistillError(f"--force: unknown stage {', '.join(repr(s) for s in sorted(unknown))}; stages: {', '.join(STAGES)}")
        self.config, self.out, self.log = config, out, log
        self.force = set(force)
        self.library = load_library(config.scenarios.libraries)
        for split in set(config.teacher.splits) | set(config.evaluate.splits):
            if not self.scenarios([split]):  # an unknown or emptied split fails now, before any work
                raise TomdistillError(f"config: split '{split}' has no scenario matching scenarios.include")
        if "train" not in config.teacher.splits:
            raise TomdistillError("config: teacher.splits must include 'train' (the dataset is built from it)")
        check_trackers(config.train.report_to)  # a missing tracker package is named before hours of asking
        self.paths = {
            "store": out / STORE_FILE, "dataset": out / "dataset", "adapter": out / "adapter",
            "eval": out / "eval.json", "report": out / "report",
        }
        self.check_outputs()
        self.state_path = out / STATE_FILE
        self.state: dict[str, dict[str, Any]] = self._load_state()
        self.records: dict[str, StageRecord] = {}
        self.keys = self._stage_keys()

    def _folders(self) -> dict[str, tuple[str, str, Legacy]]:
        """The output sub-folders: path name -> (stage writing it, marker kind, migration test)."""
        from .dataset import DATASET_KIND, is_dataset_folder
        from .evaluate.report import is_report_folder
        from .train import ADAPTER_KIND, is_adapter_folder

        return {"dataset": ("dataset", DATASET_KIND, is_dataset_folder),
                "adapter": ("train", ADAPTER_KIND, is_adapter_folder),
                "report": ("report", REPORT_KIND, is_report_folder)}

    def check_outputs(self) -> None:
        """Refuse, before any stage runs, an --out (or a folder in it) that tomdistill did not write."""
        check_dir(self.out, RUN_KIND, legacy=_is_run_folder, hint=OUT_HINT)
        for name, (_, kind, legacy) in self._folders().items():
            check_dir(self.paths[name], kind, legacy=legacy, hint=OUT_HINT)

    def _load_state(self) -> dict[str, dict[str, Any]]:
        if not self.state_path.exists():
            return {}
        state = _read_state(self.state_path)
        if state is None:
            raise TomdistillError(f"{self.state_path}: not a valid tomdistill pipeline state; {OUT_HINT}")
        return state

    def _claim(self, name: str, *, replace: bool) -> Path:
        """Mark a sub-folder with its stage key; `replace` first deletes it (only ever our own)."""
        stage, kind, legacy = self._folders()[name]
        return (replace_owned_dir if replace else claim_dir)(self.paths[name], kind, key=self.keys[stage],
                                                             legacy=legacy, hint=OUT_HINT)

    def scenarios(self, splits: list[str]) -> list[Scenario]:
        """The scenarios of these splits that scenarios.include keeps (all when it is empty)."""
        from .scenarios.library import id_matches

        patterns = self.config.scenarios.include
        return [s for split in splits for s in self.library.scenarios(split)
                if not patterns or id_matches(s.id, patterns)]

    def _stage_keys(self) -> dict[str, str]:
        c = self.config
        from .dataset import DATASET_VERSION
        from .models.base import SCORING_VERSION
        from .models.registry import spec_fingerprint
        from .scenarios.parse import PARSER_VERSION

        # An edited planted:FILE.toml is another teacher; other specs add nothing, so their keys stay as they were.
        edited = [fp] if (fp := spec_fingerprint(c.teacher.model)) else []
        teacher = _key("teacher", c.teacher.model_dump(mode="json", exclude={"batch_size", "concurrency", "ray"}), c.seed,
                       _prompts_key(self.scenarios(c.teacher.splits), c.teacher.protocol), *edited)
        # Scored runs depend on what scoring computes (its version) and the one comparison temperature.
        scoring = (SCORING_VERSION, c.evaluate.temperature)
        teacher_score = _key("teacher_score", c.teacher.model, c.teacher.base_url, c.teacher.protocol, c.teacher.samples,
                             scoring, c.seed, _prompts_key(self.scenarios(c.evaluate.splits), c.teacher.protocol), *edited)
        # The dataset carries the teacher's exact scores as soft-label targets, so it follows teacher_score too.
        dataset = _key("dataset", teacher, teacher_score, c.dataset.model_dump(), PARSER_VERSION, DATASET_VERSION)
        # Where the training reports to changes nothing it produces, like the Ray settings of the others.
        train = _key("train", dataset, c.student.model, c.train.model_dump(mode="json", exclude={"report_to"}))
        base = _key("base", c.student.model_dump(mode="json", exclude={"batch_size", "ray"}), c.seed, scoring,
                    _prompts_key(self.scenarios(c.evaluate.splits), c.student.protocol))
        student = _key("student", base, train)
        evaluate = _key("evaluate", teacher_score, base, student, c.evaluate.model_dump(), c.seed)
        report = _key("report", evaluate)
        return dict(teacher=teacher, teacher_score=teacher_score, dataset=dataset, train=train, base=base,
                    student=student, evaluate=evaluate, report=report)

    def run_name(self, stage: str) -> str:
        return f"{stage}-{self.keys[stage]}"

    # --- bookkeeping -------------------------------------------------------------------------

    def _done(self, stage: str) -> bool:
        if stage in self.force:
            return False
        return self.state.get(stage, {}).get("key") == self.keys[stage] and self._outputs_exist(stage)

    def _outputs_exist(self, stage: str) -> bool:
        p = self.paths
        files = {
            "dataset": (p["dataset"] / "manifest.json").is_file(),
            "train": (p["adapter"] / "adapter_config.json").is_file(),
            "evaluate": p["eval"].is_file(),
            "report": (p["report"] / "report.html").is_file(),
        }
        return files[stage] if stage in files else self._run_stored(stage)

    def _run_stored(self, stage: str) -> bool:
        """Whether the run an elicitation stage recorded is still in the store: `tomdistill runs
        delete` may have removed it, and the stages after it would then fail on the missing run."""
        from .store import Store

        if not self.paths["store"].is_file():
            return False
        run = self.state.get(stage, {}).get("details", {}).get("run", self.run_name(stage))
        with Store(self.paths["store"], readonly=True) as store:
            return store.get_run(run) is not None

    def _save_state(self) -> None:
        self.state_path.write_text(json.dumps(self.state, indent=2))

    def _stage(self, stage: str, work: Callable[[], dict[str, Any]]) -> None:
        if self._done(stage):
            previous = self.state[stage]
            self.records[stage] = StageRecord(self.keys[stage], previous["seconds"], previous["finished"], True,
                                              previous.get("details", {}))
            self.log(f"[{stage}] up to date (key {self.keys[stage]}), skipped")
            return
        # A forced or changed stage invalidates everything after it.
        later = STAGES[STAGES.index(stage) + 1 :]
        self.force.update(s for s in later if self.state.get(s, {}).get("key") == self.keys[s])
        self.log(f"[{stage}] running (key {self.keys[stage]})")
        started = time.perf_counter()
        with PeakMemory() as memory:  # this stage's own peak: ru_maxrss would carry earlier stages' peaks
            details = work()
        release_freed_memory()  # so that what this stage freed does not count toward the next one
        seconds = round(time.perf_counter() - started, 1)
        finished = time.strftime("%Y-%m-%dT%H:%M:%S")
        details = details | {"peak_rss_mib": memory.mib}
        self.state[stage] = {"key": self.keys[stage], "seconds": seconds, "finished": finished, "details": details}
        self._save_state()
        self.records[stage] = StageRecord(self.keys[stage], seconds, finished, False, details)
        self.log(f"[{stage}] done in {seconds} s, peak {memory.mib / 1024:.2f} GiB")

    # --- stages ------------------------------------------------------------------------------

    def _elicit(self, role: str, section: TeacherConfig | StudentConfig, splits: list[str], *, mode: str, sampling,
                adapter: Path | None = None, run: str | None = None) -> dict[str, Any]:
        """Elicit `section`'s model (the config's teacher or student) on `splits` as run `run`."""
        from .ask import model_options, open_model
        from .elicit import elicit
        from .store import Store

        run = run or self.run_name(role)
        if role in self.force:  # a forced elicitation starts its run afresh instead of resuming it
            with Store(self.paths["store"]) as store:
                store.delete_run(run)
        scenarios = self.scenarios(splits)
        spec, protocol, samples = section.model, section.protocol, section.samples
        model = open_model(spec, mode=mode, options=model_options(section, section.ray, adapter=adapter)).model  # type: ignore[arg-type]
        try:
            with Store(self.paths["store"]) as store, progress_bar(f"{role}: {spec}") as progress:
                summary = elicit(
                    store, model, scenarios, run_name=run, protocol=protocol, mode=mode,  # type: ignore[arg-type]
                    samples=samples, settings=sampling, seed=self.config.seed,
                    adapter=str(adapter) if adapter else None, progress=progress,
                )
        finally:
            model.close()
        valid = sum(s.valid for s in summary.scenarios)
        total = sum(s.n for s in summary.scenarios)
        return {"run": run, "mode": mode, "model": spec, "samples": total, "valid": valid, "new": summary.new,
                "model_info": model.info().details}

    def teacher(self) -> dict[str, Any]:
        t = self.config.teacher
        return self._elicit("teacher", t, t.splits, mode="sample", sampling=t.sampling)

    def teacher_score(self) -> dict[str, Any]:
        """The teacher's exact decisions on every evaluation split, at the comparison temperature.

        One forward pass per scenario. A teacher that cannot be scored (a server without
        log-probs) is sampled instead, `teacher.samples` replies per scenario at that temperature,
        and evaluation then treats its rates as sampled (with their noise)."""
        from .models.base import UnsupportedError

        t, temperature = self.config.teacher, self.config.evaluate.temperature
        try:
            return self._elicit("teacher_score", t, self.config.evaluate.splits, mode="score",
                                sampling=SamplingSettings(temperature=temperature))
        except UnsupportedError as exc:
            self.log(f"[teacher_score] {exc}; sampling {t.samples} replies per scenario instead")
            details = self._elicit("teacher_score", t, self.config.evaluate.splits, mode="sample",
                                   sampling=t.sampling.model_copy(update={"temperature": temperature}),
                                   run=self.run_name("teacher_score") + "-sampled")
            return details | {"fallback": str(exc)}

    def dataset(self) -> dict[str, Any]:
        from .dataset import build_dataset
        from .store import Store

        with Store(self.paths["store"]) as store:  # build_dataset replaces the folder, being ours (checked)
            # The exact scores become the soft-label targets; a teacher that fell back to sampling has none.
            scored = store.get_run(self.run_name("teacher_score"))
            manifest = build_dataset(
                store, store.require_run(self.run_name("teacher")), self.library, self.paths["dataset"],
                prompt_protocol=self.config.dataset.prompt_protocol, require_motivation=self.config.dataset.require_motivation,
                key=self.keys["dataset"], targets_run=scored if scored is not None and scored.mode == "score" else None,
                label_permutations=self.config.dataset.label_permutations,
                paraphrases=self.config.dataset.paraphrases, exclude=self.config.dataset.exclude,
            )
        return {"examples": manifest.examples, "dropped_invalid": manifest.dropped_invalid, "decisions": manifest.decisions,
                "decision_targets": manifest.decision_targets, "with_target": manifest.with_target}

    def train(self) -> dict[str, Any]:
        from .train import CHECKPOINTS, train

        adapter = self.paths["adapter"]
        recorded = self.state.get("train", {})
        # Same key and checkpoints left by an interrupted run: continue it; anything else starts afresh.
        resume = recorded.get("started_key") == self.keys["train"] and (adapter / CHECKPOINTS).is_dir() \
            and "train" not in self.force
        self._claim("adapter", replace=not resume)
        self.state["train"] = {**recorded, "started_key": self.keys["train"]}
        self._save_state()
        result = train(self.config.student.model, self.paths["dataset"], adapter, self.config.train, resume=resume)
        return {"steps": result.steps, "examples": result.examples, "final_loss": result.final_loss,
                "resumed_from": result.resumed_from}

    def _student_run(self, role: str, adapter: Path | None) -> dict[str, Any]:
        s = self.config.student
        # Score mode reads the temperature from the settings: the comparison temperature (which
        # the config already requires of a sampled student's settings).
        sampling = s.sampling.model_copy(update={"temperature": self.config.evaluate.temperature})
        return self._elicit(role, s, self.config.evaluate.splits, mode=s.mode, sampling=sampling, adapter=adapter)

    def _eval_runs(self) -> dict[str, str]:
        """The runs evaluation compares: the teacher's reference run (scored, or sampled as a
        fallback, as its stage recorded), and the base and fine-tuned student."""
        reference = self.records.get("teacher_score")
        teacher = reference.details.get("run") if reference else None
        return {"teacher": teacher or self.run_name("teacher_score"),
                "base": self.run_name("base"), "student": self.run_name("student")}

    def evaluate(self) -> dict[str, Any]:
        from .evaluate import evaluate_runs, save_report
        from .store import Store

        runs = self._eval_runs()
        with Store(self.paths["store"]) as store:
            report = evaluate_runs(store, runs, self.library, bootstrap=self.config.evaluate.bootstrap, seed=self.config.seed)
        save_report(report, self.paths["eval"])
        self._card_behaviour(report)
        return {split: {"gap_closed": r.gap_closed, "gap_closed_ci": r.gap_closed_ci,
                        "paper_improvement_mean": r.paper_improvement_mean, "cells": len(r.cells)}
                for split, r in report.splits.items()}

    def _card_behaviour(self, report: Any) -> None:
        """The adapter's model card gains the behaviour summary this evaluation measured."""
        from .agents.export import behaviour_from_eval, card_rows
        from .train.card import refresh_adapter_card

        rows = card_rows(behaviour_from_eval(report, self.paths["eval"]))
        refresh_adapter_card(self.paths["adapter"], self.paths["dataset"], rows)

    def report(self) -> dict[str, Any]:
        from .evaluate import load_report
        from .evaluate.report import write_report

        paths = write_report(load_report(self.paths["eval"]), self._claim("report", replace=True))
        return {"files": sorted(p.name for p in paths.values())}

    # --- driver ------------------------------------------------------------------------------

    def run(self) -> PipelineResult:
        self.check_outputs()  # again: the folder may have changed since this Pipeline was made
        claim_dir(self.out, RUN_KIND, legacy=_is_run_folder, hint=OUT_HINT)
        started = time.perf_counter()
        self._stage("teacher", self.teacher)
        self._stage("teacher_score", self.teacher_score)
        self._stage("dataset", self.dataset)
        self._stage("train", self.train)
        self._stage("base", lambda: self._student_run("base", None))
        self._stage("student", lambda: self._student_run("student", self.paths["adapter"]))
        self._stage("evaluate", self.evaluate)
        self._stage("report", self.report)
        result = PipelineResult(self.out, self.records, self.paths["eval"], self.paths["report"], round(process_peak_mib(), 1))
        self._write_manifest(result, time.perf_counter() - started)
        return result

    def _write_manifest(self, result: PipelineResult, wall: float) -> None:
        manifest = {
            "config": self.config.model_dump(mode="json"),
            "versions": package_versions(),
            "stage_keys": self.keys,
            "runs": {"teacher_samples": self.run_name("teacher")} | self._eval_runs(),
            "seeds": {"run": self.config.seed, "train": self.config.train.seed},
            "stages": {name: vars(rec) for name, rec in result.stages.items()},
            "wall_s_this_invocation": round(wall, 1),
            "peak_rss_mb_this_invocation": result.peak_rss_mb,
            "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": _cpus()},
        }
        (self.out / MANIFEST_FILE).write_text(json.dumps(manifest, indent=2, default=str))


def _cpus() -> int | None:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def run_pipeline(config: Config, out: Path | None = None, *, force: set[str] = frozenset(),
                 log: Callable[[str], None] = print) -> PipelineResult:
    """Run (or continue) the whole pipeline into `out` (default: config.out)."""
    return Pipeline(config, out or config.out, force=force, log=log).run()
