"""Trainer callbacks for `tomdistill train`: the loss log file and the progress display.

Imported only when a training starts (build.py), so that importing tomdistill never imports transformers.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from pathlib import Path

from transformers import TrainerCallback

from ..progress import ProgressUpdate, progress_bar


class LossLog(TrainerCallback):
    """One JSON line per logging step (step, epoch, loss, decision loss, learning rate, grad norm), rank 0 only."""

    def __init__(self, path: Path, append: bool) -> None:
        self.path = path
        self.append = append

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept = []
        if self.append and self.path.is_file():
            # On resume, steps after the checkpoint were lost with the process and will be run again.
            kept = [line for line in self.path.read_text().splitlines()
                    if line.strip() and json.loads(line)["step"] <= state.global_step]
        self.path.write_text("".join(line + "\n" for line in kept))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if state.is_world_process_zero and logs and "loss" in logs:
            row = {"step": state.global_step, "epoch": round(state.epoch or 0, 4)}
            row |= {k: logs[k] for k in ("loss", "decision_loss", "learning_rate", "grad_norm") if k in logs}
            with self.path.open("a") as fh:
                fh.write(json.dumps(row) + "\n")


class RichProgress(TrainerCallback):
    """Steps done / total, the latest loss, elapsed time and ETA (rank 0 only), in the display every
    long command shows (progress.py): a bar on a terminal, plain lines in a log."""

    def __init__(self) -> None:
        self.display = ExitStack()
        self.update: ProgressUpdate | None = None
        self.loss = "loss -"

    def on_train_begin(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self.update = self.display.enter_context(progress_bar("training"))
            self.update(state.global_step, state.max_steps, self.loss)

    def on_step_end(self, args, state, control, **kwargs):
        # A step that logs is shown by on_log, right after, with its own loss rather than the last one.
        if self.update and not control.should_log:
            self.update(state.global_step, state.max_steps, self.loss)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.update and logs and "loss" in logs:
            self.loss = f"loss {logs['loss']:.4f}"
            self.update(state.global_step, state.max_steps, self.loss)

    def on_train_end(self, args, state, control, **kwargs):
        self.display.close()
        self.update = None
