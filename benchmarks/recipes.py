"""Recipe ablations: train and evaluate distillation variants on two teachers, one table.

Each variant is a set of config overrides on top of a teacher's config (the embedded LLM teacher:
the built-in defaults; the planted positive control: examples/planted.toml). All variants of one
teacher run `tomdistill run` into the same work folder, one after another, so the teacher's
samples, its exact scores and the base student's scores are computed once and reused (the
pipeline keys its stages); only training and the student's evaluation run per variant. Every
run is a child process waited on with `os.wait4`, which gives its own peak RSS.

    python benchmarks/recipes.py --teacher planted --variant tokens --variant soft+tokens
    python benchmarks/recipes.py --teacher llm --teacher planted          # every variant
    python benchmarks/recipes.py --list                                   # the variants

Variants differ only in training; the seed of a variant's training is `train.seed` (the teacher's
samples stay the same). Writes one eval.json per run to benchmarks/results/recipes/ and the table
to benchmarks/results/recipes.md (appending rows for runs it has not seen).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import subprocess
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

import tomli_w

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
#: Teacher name -> the config file it starts from (None: the built-in defaults).
TEACHERS: dict[str, Path | None] = {"llm": None, "planted": ROOT / "examples" / "planted.toml"}
#: Every linear layer of a Llama-style block (SmolLM2, Qwen2).
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
#: The recipe every variant starts from: the paper-style training tomdistill had before issue 16
#: (token loss, LoRA r 8 on q/v), written out so a variant means the same whatever the defaults.
BASELINE_TRAIN: dict[str, Any] = {"decision_loss": "tokens", "decision_weight": 1.0, "r": 8, "alpha": 16,
                                  "target_modules": ["q_proj", "v_proj"]}
#: Variant name -> (what it changes, config overrides on BASELINE_TRAIN; None: the built-in defaults as they are).
VARIANTS: dict[str, tuple[str, dict[str, Any] | None]] = {
    "default": ("the built-in default recipe (TrainConfig's defaults, whatever they are now)", None),
    "tokens": ("the paper's SFT: token loss on the sampled replies", {}),
    "soft+tokens": ("token loss on the motivation + soft decision loss (weight 1)",
                    {"train": {"decision_loss": "soft+tokens"}}),
    "soft": ("soft decision loss only (no motivation tokens)", {"train": {"decision_loss": "soft"}}),
    "soft+tokens-w3": ("token loss + soft decision loss, weight 3",
                       {"train": {"decision_loss": "soft+tokens", "decision_weight": 3.0}}),
    "soft+tokens+perm2": ("soft+tokens, plus 2 relabelled copies of each training scenario",
                          {"train": {"decision_loss": "soft+tokens"}, "dataset": {"label_permutations": 2}}),
    "soft+tokens+para3": ("soft+tokens, plus the 3 paraphrased framings of each training context",
                          {"train": {"decision_loss": "soft+tokens"}, "dataset": {"paraphrases": 3}}),
    "soft+tokens+perm2+para3": ("soft+tokens with both augmentations",
                                {"train": {"decision_loss": "soft+tokens"},
                                 "dataset": {"label_permutations": 2, "paraphrases": 3}}),
    "soft-allmods": ("soft decision loss only, LoRA r 16 on every linear layer (attention and MLP)",
                     {"train": {"decision_loss": "soft", "r": 16, "alpha": 32, "target_modules": ALL_LINEAR}}),
    "soft-allmods+perm2": ("soft-allmods plus 2 relabelled copies of each training scenario",
                           {"train": {"decision_loss": "soft", "r": 16, "alpha": 32, "target_modules": ALL_LINEAR},
                            "dataset": {"label_permutations": 2}}),
    "soft+tokens-allmods": ("soft+tokens, LoRA r 16 on every linear layer",
                            {"train": {"decision_loss": "soft+tokens", "r": 16, "alpha": 32,
                                       "target_modules": ALL_LINEAR}}),
    "soft+tokens-allmods-w5": ("soft+tokens, LoRA r 16 on every linear layer, decision loss weight 5",
                               {"train": {"decision_loss": "soft+tokens", "decision_weight": 5.0, "r": 16,
                                          "alpha": 32, "target_modules": ALL_LINEAR}}),
    "soft+tokens-allmods-w5+para3": ("soft+tokens-allmods-w5 plus the 3 paraphrased framings of each training context",
                                     {"train": {"decision_loss": "soft+tokens", "decision_weight": 5.0, "r": 16,
                                                "alpha": 32, "target_modules": ALL_LINEAR},
                                      "dataset": {"paraphrases": 3}}),
    "soft+tokens-allmods-w5-samples8-epochs1": ("soft+tokens-allmods-w5 on 8 teacher motivations per scenario, "
                                                "1 epoch (same steps)",
                                                {"train": {"decision_loss": "soft+tokens", "decision_weight": 5.0,
                                                           "r": 16, "alpha": 32, "target_modules": ALL_LINEAR,
                                                           "epochs": 1.0},
                                                 "teacher": {"samples": 8}}),
    "soft+tokens-samples8-epochs1": ("soft+tokens on 8 teacher motivations per scenario, 1 epoch (same steps)",
                                     {"train": {"decision_loss": "soft+tokens", "epochs": 1.0},
                                      "teacher": {"samples": 8}}),
}
SPLITS = ("train", "heldout_context", "heldout_game", "heldout_pgg")


def merged(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """`base` with `overrides` laid over it, tables merged key by key."""
    out = copy.deepcopy(base)
    for key, value in overrides.items():
        out[key] = merged(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def run_variant(teacher: str, variant: str, seed: int, work: Path, leave_out: str | None = None) -> dict[str, Any]:
    """Run the pipeline for one (teacher, variant, training seed); its eval, wall time and peak RSS.
    `leave_out`: a training context kept out of the training data, scored on its own cells."""
    source = TEACHERS[teacher]
    base = tomllib.loads(source.read_text()) if source else {}
    overrides = VARIANTS[variant][1]
    config = base if overrides is None else merged(merged(base, {"train": BASELINE_TRAIN}), overrides)
    config = merged(config, {"train": {"seed": seed}, "out": str(work / teacher)})
    if leave_out:
        excluded = config.get("dataset", {}).get("exclude", [])
        config = merged(config, {"dataset": {"exclude": [*excluded, f"{leave_out}/*"]}})
    name = f"{teacher}-{variant}-s{seed}" + (f"-lo-{leave_out}" if leave_out else "")
    path = work / f"{name}.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(tomli_w.dumps(config))
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "tomdistill", "run", str(path)], cwd=ROOT)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{path}: tomdistill run failed")
    wall = time.perf_counter() - started
    out = work / teacher
    evaluation = json.loads((out / "eval.json").read_text())
    stages = json.loads((out / "manifest.json").read_text())["stages"]
    record = {"teacher": teacher, "variant": variant, "seed": seed, "leave_out": leave_out, "wall_s": round(wall, 1),
              "peak_rss_gib": round(usage.ru_maxrss / 2**20, 2),
              "train_s": stages["train"]["seconds"], "student_s": stages["student"]["seconds"],
              "eval": evaluation}
    if leave_out:
        record["left_out"] = left_out_scores(evaluation, leave_out)
    (RESULTS / "recipes").mkdir(parents=True, exist_ok=True)
    (RESULTS / "recipes" / f"{name}.json").write_text(json.dumps(record, indent=1))
    return record


def left_out_scores(evaluation: dict[str, Any], context: str) -> dict[str, Any]:
    """Gap closed, the constant baseline's and the game-profile r on the left-out context's train
    cells (every role exact, so no noise correction): what the recipe does on a context it never saw."""
    from tomdistill.evaluate.stats import game_profile_correlation

    cells = evaluation["splits"]["train"]["cells"]
    mine = [c for c in cells if c["context"] == context]
    rest = [c["teacher"]["value"] for c in cells if c["context"] != context]
    t = [c["teacher"]["value"] for c in mine]
    b = [c["base"]["value"] for c in mine]
    s = [c["student"]["value"] for c in mine]
    constant = sum(rest) / len(rest)  # the teacher's mean over the cells it was trained on

    def closed(role: list[float]) -> float:
        return 100 * (1 - sum((x - y) ** 2 for x, y in zip(role, t)) / sum((x - y) ** 2 for x, y in zip(b, t)))

    return {"context": context, "cells": len(mine), "gap_closed": closed(s), "baseline": closed([constant] * len(t)),
            "game_r": game_profile_correlation([context] * len(t), s, t)}


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _ci(pair: list[float] | None) -> str:
    return "" if not pair else f" [{pair[0]:.1f}, {pair[1]:.1f}]"


def rows(record: dict[str, Any]) -> list[str]:
    """Markdown rows, one per split, for one run (one row for a leave-one-context-out run)."""
    if record.get("leave_out"):
        lo = record["left_out"]
        r = "–" if lo["game_r"] is None else f"{lo['game_r']:.2f}"
        return [f"| {record['teacher']} | {record['variant']} | {record['seed']} | {lo['context']} | "
                f"{lo['gap_closed']:.1f} | {lo['baseline']:.1f} | {r} | {record['train_s']:.0f} |"]
    out = []
    for split in SPLITS:
        s = record["eval"]["splits"].get(split)
        if s is None:
            continue
        r_s, r_b = s.get("game_profile_correlation_student"), s.get("game_profile_correlation_base")
        game_r = "–" if r_s is None else f"{r_s:.2f} / {'–' if r_b is None else f'{r_b:.2f}'}"
        spread = game_spread(s["cells"])
        beats = "–" if s.get("gap_closed_baseline") is None else {True: "yes", False: "no", None: "undecided"}[s.get("beats_baseline")]
        out.append(f"| {record['teacher']} | {record['variant']} | {record['seed']} | {split} | "
                   f"{_pct(s['gap_closed'])}{_ci(s.get('gap_closed_ci'))} | {_pct(s.get('gap_closed_baseline'))} | "
                   f"{beats} | {_pct(s.get('kl_closed'))}{_ci(s.get('kl_closed_ci'))} | {game_r} | {spread} | "
                   f"{_pct(s.get('paper_improvement_mean'))} | {record['train_s']:.0f} | {record['wall_s']:.0f} | "
                   f"{record['peak_rss_gib']:.1f} |")
    return out


HEADER = ("| teacher | variant | seed | split | gap closed % [95% CI] | baseline % | beats | KL closed % [95% CI] | "
          "game r student / base | game spread student / teacher | paper % | train s | wall s | peak GiB |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def game_spread(cells: list[dict[str, Any]]) -> str:
    """Mean over contexts of the largest minus the smallest rate among its games (points), student /
    teacher: the size of the game differences a correlation cannot show."""
    by_context: dict[str, list[tuple[float, float]]] = {}
    for c in cells:
        if c.get("unit") == "percent" and c["student"]["value"] is not None:
            by_context.setdefault(c["context"], []).append((c["student"]["value"], c["teacher"]["value"]))
    groups = [g for g in by_context.values() if len(g) > 1]
    if not groups:
        return "–"

    def mean_range(i: int) -> float:
        return sum(max(v[i] for v in g) - min(v[i] for v in g) for g in groups) / len(groups)

    return f"{mean_range(0):.1f} / {mean_range(1):.1f}"


LOCO_HEADER = ("| teacher | variant | seed | left-out context | gap closed % | constant baseline % | game r | train s |\n"
               "|---|---|---|---|---|---|---|---|")


def write_table() -> Path:
    """benchmarks/results/recipes.md from every stored run, teacher by teacher, variant by variant:
    the per-split table, then the leave-one-context-out runs."""
    records = [json.loads(p.read_text()) for p in sorted((RESULTS / "recipes").glob("*.json"))]
    order = list(VARIANTS)
    records.sort(key=lambda r: (r["teacher"], order.index(r["variant"]) if r["variant"] in order else 99, r["seed"],
                                r.get("leave_out") or ""))
    main_rows = [row for r in records if not r.get("leave_out") for row in rows(r)]
    loco_rows = [row for r in records if r.get("leave_out") for row in rows(r)]
    text = "\n".join([HEADER, *main_rows]) + "\n"
    if loco_rows:
        text += "\n" + "\n".join([LOCO_HEADER, *loco_rows]) + "\n"
    path = RESULTS / "recipes.md"
    path.write_text(text)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", action="append", choices=list(TEACHERS), help="Repeatable; default: both.")
    parser.add_argument("--variant", action="append", choices=list(VARIANTS), help="Repeatable; default: all.")
    parser.add_argument("--seed", action="append", type=int, help="Training seed (repeatable); default: 0.")
    parser.add_argument("--leave-out", action="append", help="Training context kept out of training (repeatable: one "
                        "run per context); its cells are scored apart. Default: none.")
    parser.add_argument("--work", type=Path, default=ROOT / "recipes-work", help="Folder for the runs (reused).")
    parser.add_argument("--list", action="store_true", help="Print the variants and exit.")
    args = parser.parse_args()
    if args.list:
        for name, (what, overrides) in VARIANTS.items():
            print(f"{name:16s} {what}  {json.dumps(overrides)}")
        return
    for teacher in args.teacher or list(TEACHERS):
        for variant in args.variant or list(VARIANTS):
            for seed in args.seed or [0]:
                for leave_out in args.leave_out or [None]:
                    record = run_variant(teacher, variant, seed, args.work, leave_out)
                    print("\n".join(rows(record)), flush=True)
    print(f"table: {write_table()}")


if __name__ == "__main__":
    main()
