"""`tomdistill export`: a trained adapter -> a self-describing agent folder.

    AGENT_DIR/
      agent.json       format, weights, base model (spec + hash), chat template, protocol and its
                       texts, decision mode, sampling defaults, training provenance, versions
      adapter/ | model/  the LoRA adapter (with tokenizer and chat template), or with --merge the
                       standalone merged model (loads with transformers, vLLM, llama.cpp after GGUF)
      behaviour.json   per-cell rates of this agent vs its teacher and base, with intervals
      BEHAVIOUR.md     the same as a readable card (both only when an eval.json is given/found)
      README.md        what the agent is and how to load, use and serve it

The folder is written under a temporary name and renamed when complete, so an interrupted export
never leaves a folder that looks finished. Export copies real files only: a symbolic link in the
adapter folder is refused (`tomdistill train` writes none), so a link cannot pull a file from
elsewhere into an agent folder meant to be shared. `--out` must be a new or empty folder outside
the adapter folder; anything else is refused before a byte is written.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import TomdistillError
from ..models.base import SamplingSettings, check_adapter_dir
from ..outdirs import HINT, check_dir
from ..scenarios.protocols import PROTOCOLS, history_text, protocol_texts
from ..train.folders import student_of, training_info
from ..versions import __version__, package_versions
from .agent import MODES, default_sampling
from .manifest import AGENT_FILE, AgentManifest, BaseRef, base_ref, file_sha256, resolved, walk, weight_files

if TYPE_CHECKING:  # for annotations only: evaluate loads scipy, so it is imported where an eval.json is read
    from ..dataset import DatasetManifest
    from ..evaluate import EvalReport

BEHAVIOUR_JSON = "behaviour.json"
BEHAVIOUR_MD = "BEHAVIOUR.md"
#: Training leftovers that an agent does not need (optimizer state, pickled trainer arguments).
_SKIP = frozenset({"checkpoints", "training_args.bin"})


@dataclass
class ExportResult:
    out: Path
    manifest: AgentManifest
    eval_json: Path | None
    behaviour: dict[str, Any] | None
    seconds: float
    notes: list[str]


def check_adapter_files(adapter: Path) -> None:
    """Refuse a symbolic link (or a pipe, a device) among the adapter files export would copy."""
    for path in walk(adapter, _SKIP):
        if path.is_symlink():
            raise TomdistillError(f"{path}: a symbolic link in the adapter folder; export copies real files only "
                                  "(replace the link with a copy of what it points to, or remove it)")
        if not (path.is_file() or path.is_dir()):
            raise TomdistillError(f"{path}: neither a file nor a folder; export copies real files only")


def check_out(adapter: Path, out: Path) -> None:
    """Refuse an --out that export cannot write without harm: inside the adapter, a link, a file,
    below a file, or a non-empty folder (even an earlier agent: export replaces nothing)."""
    if resolved(out).is_relative_to(resolved(adapter)):
        raise TomdistillError(f"{out}: is inside the adapter folder {adapter} being exported; choose an --out outside it")
    check_dir(out, "export", legacy=lambda folder: (folder / AGENT_FILE).is_file())
    ancestor = next((p for p in out.parents if p.exists() or p.is_symlink()), None)
    if ancestor is not None and not ancestor.is_dir():
        raise TomdistillError(f"{ancestor}: is a file, so the folder {out} cannot be made below it; {HINT}")
    if out.is_dir() and any(out.iterdir()):
        raise TomdistillError(f"{out}: already exists and is not empty; export writes a new or empty folder only ({HINT})")


def _dataset_manifest(adapter: Path, info: dict[str, Any]):
    """The training dataset's manifest, if its folder can still be found (paths were relative to
    where training ran, so try there, beside the adapter, and the pipeline's own layout)."""
    from ..dataset import load_manifest

    given = info.get("dataset")
    candidates = [Path(given), adapter.parent / given, adapter.parent.parent / given] if given else []
    candidates.append(adapter.parent / "dataset")
    for folder in candidates:
        if (folder / "manifest.json").is_file():
            try:
                return load_manifest(folder)
            except (TomdistillError, TypeError):
                continue
    return None


def find_eval(adapter: Path) -> Path | None:
    """The eval.json of the `tomdistill run` folder this adapter belongs to, if it is one."""
    parent = adapter.resolve().parent
    if (parent / "pipeline.json").is_file() and (parent / "eval.json").is_file():
        return parent / "eval.json"
    return None


#: Split keys of eval.json copied into behaviour.json, under the card's name ("agent" for the student).
_CARD_KEYS = {
    "gap_closed": "gap_closed", "gap_closed_ci": "gap_closed_ci", "gap_closed_baseline": "gap_closed_baseline",
    "beats_baseline": "beats_baseline", "kl_closed": "kl_closed", "kl_closed_ci": "kl_closed_ci",
    "cross_entropy_student": "cross_entropy_agent", "cross_entropy_base": "cross_entropy_base",
    "game_profile_correlation_student": "game_profile_correlation_agent",
    "game_profile_correlation_base": "game_profile_correlation_base",
    "paper_improvement_mean": "paper_improvement_mean",
    "profile_correlation_student": "profile_correlation_agent", "profile_correlation_base": "profile_correlation_base",
    "samples_min": "samples_min", "interval_trusted": "interval_trusted",
}


def behaviour_from_eval(report: EvalReport, eval_path: Path) -> dict[str, Any]:
    """This agent's rates beside the teacher's and the base's, per cell and split, from an EvalReport."""
    splits = {}
    for name, s in report.splits.items():
        splits[name] = {card: getattr(s, key) for key, card in _CARD_KEYS.items()}
        splits[name]["cells"] = [{"scenario": c.scenario, "unit": c.unit, "agent": c.student.model_dump(),
                                  "teacher": c.teacher.model_dump(), "base": c.base.model_dump()} for c in s.cells]
    return {
        "eval": str(eval_path), "eval_created": report.created, "eval_schema_version": report.schema_version,
        "temperature": report.temperature,
        "sources": {s.role if s.role != "student" else "agent": s.model_dump(exclude_none=True) for s in report.sources},
        "units": "percent choosing the cooperative action, or mean dollars given (donation game); "
                 "gap closed, KL closed and the baseline in percent, cross-entropies in nats",
        "splits": splits,
    }


def card_rows(behaviour: dict[str, Any]) -> list[str]:
    """The card's summary table: one row per split."""
    from ..evaluate.formatting import format_estimate, format_value, format_verdict

    rows = ["| split | cells | gap closed [95% CI] | baseline | beats baseline | KL closed [95% CI] | "
            "game-profile r agent / base | paper metric (this run) |", "|---|---|---|---|---|---|---|---|"]
    for split, s in behaviour["splits"].items():
        rows.append(
            f"| {split} | {len(s['cells'])} | {format_estimate(s['gap_closed'], s['gap_closed_ci'])} | "
            f"{format_value(s['gap_closed_baseline'], 1, '%')} | {format_verdict(s['beats_baseline'])} | "
            f"{format_estimate(s['kl_closed'], s['kl_closed_ci'])} | {format_value(s['game_profile_correlation_agent'], 2)}"
            f" / {format_value(s['game_profile_correlation_base'], 2)} | {format_value(s['paper_improvement_mean'], 1, '%')} |"
        )
    return rows


def behaviour_markdown(name: str, behaviour: dict[str, Any], report: EvalReport) -> str:
    from ..evaluate.formatting import format_rate, temperature_line

    src = behaviour["sources"]

    def who(role: str) -> str:
        s = src.get(role, {})
        what = s.get("records") or f"`{s.get('model')}`" + (f" + adapter `{s['adapter']}`" if s.get("adapter") else "")
        return f"{what} ({s.get('mode', 'records')}{', run ' + s['run'] if s.get('run') else ''})"

    lines = [
        f"# Behaviour card: {name}",
        "",
        ("How this agent decides next to the teacher it was distilled from and its base model before "
        f"fine-tuning, per scenario (context x game), from `{behaviour['eval']}` (created {behaviour['eval_created']})."),
        "",
        ("Rates are the share choosing the cooperative action (C), in percent, or the mean dollars given in the "
        "donation game, with n and a 95% interval (Wilson for shares, t for means). Score-mode rates are exact "
        "probabilities from one forward pass (marked exact, no interval)."),
        "",
        temperature_line(report),
        "",
        f"- **agent**: {who('agent')}",
        f"- **teacher**: {who('teacher')}",
        f"- **base**: {who('base')}",
        "",
        *card_rows(behaviour),
        "",
        ("*Gap closed*: 1 - sum (agent - teacher)^2 / sum (base - teacher)^2 over a split's cells, less sampling "
         "noise (100% = decides like the teacher, 0% = no closer than the base). *Baseline*: the same for a constant "
         "agent at the teacher's mean train rate; *beats baseline*: above it with 95% confidence. *KL closed*: share "
         "of the base's KL divergence from the teacher removed. *Game-profile r*: correlation of within-context "
         "game differences with the teacher's. Intervals: 95% cell bootstrap. \"–\": not defined or undecided."),
    ]
    if report.schema_version < 2:
        lines += ["", "The evaluation is an older eval.json (schema version 1): gap closed there sums absolute gaps, "
                      "and the newer measures are missing."]
    for split, s in report.splits.items():
        lines += ["", f"## {split}", "", "| scenario | agent | teacher | base |", "|---|---|---|---|"]
        for c in s.cells:
            lines.append(f"| {c.scenario} | {format_rate(c.student)} | {format_rate(c.teacher)} | {format_rate(c.base)} |")
    return "\n".join(lines) + "\n"


def _check_eval_matches(report: EvalReport, student: str, adapter: Path, notes: list[str]) -> None:
    source = next((s for s in report.sources if s.role == "student"), None)
    if source is None or source.records:
        notes.append("the evaluation came from a records file; it cannot be checked against this adapter")
        return
    if source.model and source.model != student:
        raise TomdistillError(f"the evaluation's student is {source.model}, but this adapter belongs to {student}; "
                              "pass the eval.json of this adapter's run (--eval)")
    if source.adapter:
        given = Path(source.adapter)
        same = given.resolve() == adapter.resolve() or adapter.resolve().as_posix().endswith("/" + given.as_posix().lstrip("./"))
        if not same:
            notes.append(f"the evaluation measured the adapter '{source.adapter}', exported here from '{adapter}'")


def _readme(m: AgentManifest, notes: list[str]) -> str:
    where = ("a LoRA adapter in `adapter/` on the base model "
             f"`{m.base.spec}` (loaded through tomdistill, checked against the recorded weights hash)"
             if m.kind == "adapter" else
             f"a standalone model in `model/` (the adapter merged into `{m.base.spec}`); nothing else is needed to load it")
    lines = [
        f"# tomdistill agent: {m.name}",
        "",
        (f"A small language model that decides in one-shot and repeated social dilemmas like the teacher it was "
        f"distilled from{' (`' + m.training['teacher_model'] + '`)' if m.training.get('teacher_model') else ''}. "
        f"Weights: {where}."),
        "",
        f"- Asked with the `{m.protocol}` protocol (texts in `agent.json`), the way it was trained.",
        f"- Decides in `{m.mode}` mode by default "
        + ("(exact action probabilities from one forward pass, the action drawn from them)." if m.mode == "score"
           else "(a sampled reply, read by tomdistill's parser)."),
        f"- Behaviour next to its teacher and base: {'`' + BEHAVIOUR_MD + '`' if m.behaviour else 'not measured (export with --eval)'}.",
        f"- Made by tomdistill {m.tomdistill_version} on {m.created}.",
        "",
        "## Use",
        "",
        "```python",
        "import tomdistill",
        "",
        "agent = tomdistill.Agent.load(\"THIS_FOLDER\")",
        "print(agent.decide(\"business/prisoners_dilemma\", seed=1))",
        "game = tomdistill.make_scenario(",
        "    payoffs={\"C\": {\"C\": (3, 3), \"D\": (0, 5)}, \"D\": {\"C\": (5, 0), \"D\": (1, 1)}},",
        "    context=\"You run a stall at a market ... From here on the other stall keeper is called the coplayer.\",",
        ")",
        "print(agent.decide(game, seed=1).action)",
        "```",
        "",
        "```bash",
        "tomdistill play --agents THIS_FOLDER default:teacher tit-for-tat --scenario team/prisoners_dilemma --rounds 5",
        "```",
    ]
    if m.kind == "merged":
        lines += [
            "",
            "## Serve it",
            "",
            "```bash",
            "vllm serve THIS_FOLDER/model --served-model-name agent --port 8000",
            "# or llama.cpp: convert, then serve",
            "python convert_hf_to_gguf.py THIS_FOLDER/model --outfile agent.gguf --outtype f16",
            "llama-server -m agent.gguf --port 8080",
            "```",
            "",
            "Then use it back through an OpenAI-compatible spec, e.g. "
            "`tomdistill.Agent.load(\"openai:agent\", base_url=\"http://localhost:8000/v1\", protocol=\"" + m.protocol + "\")`.",
        ]
    if notes:
        lines += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    return "\n".join(lines) + "\n"


def _evaluated_sampling(mode: str, report: Any) -> SamplingSettings:
    """The agent's default settings: at the temperature its behaviour card was measured at (the
    eval's), so that `decide()` draws from the distribution the card reports."""
    settings = default_sampling(mode)
    temperature = getattr(report, "temperature", None)
    return settings if temperature is None else settings.model_copy(update={"temperature": temperature})


@dataclass
class _Plan:
    """What export settles before it writes a byte: whose adapter it is, how the agent will be
    asked and decide, and the evaluation its behaviour card comes from."""

    info: dict[str, Any]
    student: str
    base: BaseRef
    protocol: str
    mode: str
    name: str
    dataset: DatasetManifest | None
    report: EvalReport | None
    eval_path: Path | None
    notes: list[str] = field(default_factory=list)


def export_agent(
    adapter: Path,
    out: Path,
    *,
    merge: bool = False,
    eval_json: Path | None = None,
    student: str | None = None,
    mode: str | None = None,
    protocol: str | None = None,
    sampling: SamplingSettings | None = None,
    name: str | None = None,
) -> ExportResult:
    """Write the agent folder `out` from a training adapter folder (see the module docstring)."""
    started = time.perf_counter()
    plan = _plan(adapter, out, eval_json=eval_json, student=student, mode=mode, protocol=protocol, name=name)
    work = _work_folder(out)
    try:
        manifest, behaviour = _fill(work, adapter, plan, merge=merge, sampling=sampling)
        if out.exists():
            out.rmdir()  # empty, checked above
        work.rename(out)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return ExportResult(out, manifest, plan.eval_path, behaviour, time.perf_counter() - started, plan.notes)


def _plan(adapter: Path, out: Path, *, eval_json: Path | None, student: str | None, mode: str | None,
          protocol: str | None, name: str | None) -> _Plan:
    """Every check and choice of an export, in the order the user meets their errors."""
    check_adapter_dir(adapter)
    check_adapter_files(adapter)
    check_out(adapter, out)
    info = training_info(adapter)
    student = student_of(adapter, student, other_weights=False)  # the base it pins must be the trained-on one
    base = base_ref(student)
    if mode is not None and mode not in MODES:
        raise TomdistillError(f"unknown decision mode '{mode}'; choose sample or score")
    if protocol is not None and protocol not in PROTOCOLS:
        raise TomdistillError(f"unknown protocol '{protocol}'; choose one of: {', '.join(PROTOCOLS)}")
    notes: list[str] = []
    eval_path = eval_json or find_eval(adapter)
    report = _matching_eval(eval_path, student, adapter, notes)
    dataset = _dataset_manifest(adapter, info)
    if protocol is None:
        protocol = dataset.prompt_protocol if dataset else "answer"
        if dataset is None:
            notes.append("the training dataset was not found; protocol 'answer' (the default) is assumed")
    if mode is None:
        scored = next((s.mode for s in report.sources if s.role == "student" and s.mode), None) if report else None
        mode = scored or "score"
    return _Plan(info, student, base, protocol, mode, name or out.name, dataset, report, eval_path, notes)


def _matching_eval(eval_path: Path | None, student: str, adapter: Path, notes: list[str]) -> EvalReport | None:
    """The evaluation at `eval_path` (None without one), refused when it measured another student."""
    if eval_path is None:
        return None
    from ..evaluate import load_report

    report = load_report(eval_path)
    _check_eval_matches(report, student, adapter, notes)
    return report


def _work_folder(out: Path) -> Path:
    """The empty folder the agent is written into before it is renamed to `out`."""
    out.parent.mkdir(parents=True, exist_ok=True)
    # A plain mkdir (not mkdtemp, which makes a private 0700 folder) so the agent gets the usual permissions.
    work = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    return work


def _fill(work: Path, adapter: Path, plan: _Plan, *, merge: bool,
          sampling: SamplingSettings | None) -> tuple[AgentManifest, dict[str, Any] | None]:
    """Write the weights, the behaviour card, agent.json and README.md into `work`."""
    weights = _copy_weights(adapter, work, plan.student, merge)
    files = {f"{weights}/{p.name}": {"size": p.stat().st_size, "sha256": file_sha256(p)}
             for p in weight_files(work / weights)}
    behaviour = None
    if plan.report is not None:
        behaviour = behaviour_from_eval(plan.report, plan.eval_path)  # type: ignore[arg-type]
        (work / BEHAVIOUR_JSON).write_text(json.dumps(behaviour, indent=2))
        (work / BEHAVIOUR_MD).write_text(behaviour_markdown(plan.name, behaviour, plan.report))
    template = work / weights / "chat_template.jinja"
    manifest = _manifest(plan, adapter, weights, files, template.is_file(), behaviour is not None,
                         merge=merge, sampling=sampling)
    (work / AGENT_FILE).write_text(manifest.model_dump_json(indent=2))
    (work / "README.md").write_text(_readme(manifest, plan.notes))
    return manifest, behaviour


def _copy_weights(adapter: Path, work: Path, student: str, merge: bool) -> str:
    """The adapter (or, with `merge`, the merged model) in `work`; returns its folder's name."""
    if merge:
        from ..train import merge as merge_adapter

        merge_adapter(adapter, work / "model", student)
        return "model"
    # symlinks=True: were a link to appear after the check above, it is copied as a link (which
    # Agent.load refuses when it leads out), never as the file it points to.
    shutil.copytree(adapter, work / "adapter", symlinks=True, ignore=lambda d, names: [n for n in names if n in _SKIP])
    return "adapter"


def _manifest(plan: _Plan, adapter: Path, weights: str, files: dict[str, Any], has_template: bool,
              has_behaviour: bool, *, merge: bool, sampling: SamplingSettings | None) -> AgentManifest:
    """agent.json's contents: everything a loader needs, and where the agent came from."""
    texts = protocol_texts()[plan.protocol]  # type: ignore[index]
    info, dataset = plan.info, plan.dataset
    result = info.get("result", {})
    return AgentManifest(
        name=plan.name, kind="merged" if merge else "adapter", weights=weights, base=plan.base,
        chat_template=f"{weights}/chat_template.jinja" if has_template else None,
        protocol=plan.protocol,  # type: ignore[arg-type]
        protocol_texts={"system": texts.system, "choice": texts.choice, "number": texts.number,
                        "history": history_text()},
        mode=plan.mode,  # type: ignore[arg-type]
        sampling=sampling or _evaluated_sampling(plan.mode, plan.report),
        training={k: v for k, v in {
            "adapter": str(adapter), "teacher_run": info.get("teacher_run"),
            "teacher_model": dataset.teacher_model if dataset else None,
            "examples": result.get("examples"), "steps": result.get("steps"), "final_loss": result.get("final_loss"),
            "recipe": info.get("config"),
        }.items() if v is not None},
        behaviour=BEHAVIOUR_JSON if has_behaviour else None,
        files=files, tomdistill_version=__version__, versions=package_versions(),
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
