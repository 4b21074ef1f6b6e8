"""The SFT trainer `tomdistill train` uses: TRL's SFTTrainer, with a cheaper loss off GPU and the
optional soft-label decision loss (decision.py).

TRL 1.16 always computes the loss through its fused, chunked LM head. On CUDA/XPU that head
projects only the completion tokens; elsewhere (CPU) it projects every position, prompt and
padding included, in several float32 passes that also compute entropy and top-1 accuracy for
its metrics. Measured on 2 CPU cores (batch 4 x ~340 tokens, 135M student) that head cost
7-8 s per step against ~2 s for the model's own loss, which made `tomdistill train` 1.3x slower
than a plain PEFT loop. Off GPU this trainer therefore computes the causal-LM loss itself: the
quantity the model's own loss gives (mean cross-entropy over tokens whose label is not -100, or
the sum over `num_items_in_batch` under gradient accumulation), without TRL's extra metrics. With a
decision loss this path is used everywhere, since the decision term needs the LM head's input,
which TRL's fused head never exposes.

On this path the LM head projects only the positions whose next token carries a label (a
forward pre-hook hands it those rows of its input): in the default run's data 15% of positions.
Projecting every position, as the model's own loss does, cost 1.6 s of a 6.4 s step and 0.4 GiB
of peak memory (benchmark 3: batch 4 x ~340 tokens, a 49k vocabulary, logits upcast to float32)
for logits the loss masks out.

Imported only when a training starts (build.py), so that importing tomdistill never imports TRL.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from trl import SFTTrainer

from ..config import DecisionLoss
from .decision import BATCH_KEYS, active_rows, candidate_logits, candidate_loss


class TomdistillSFTTrainer(SFTTrainer):
    def __init__(self, *args: Any, decision_mode: DecisionLoss = "tokens", decision_weight: float = 1.0,
                 decision_temperature: float = 1.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.decision_mode, self.decision_weight = decision_mode, decision_weight
        self.decision_temperature = decision_temperature
        self._decision_losses: list[float] = []

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        extras = {k: inputs.pop(k) for k in BATCH_KEYS if k in inputs}
        if self.decision_mode == "tokens" and self.accelerator.device.type in ("cuda", "xpu"):
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        labels = inputs.pop("labels", None)
        if self.decision_mode == "soft":
            labels = None  # no token loss to compute
        head = self.accelerator.unwrap_model(model).get_output_embeddings()
        captured: list[torch.Tensor] = []
        # Which positions predict a labelled token, computed once for the head's hook and the loss.
        keep = None if labels is None else labels[:, 1:] != -100
        hook = head.register_forward_pre_hook(_project_only(keep, captured))
        try:
            outputs = model(**inputs, use_cache=False)
        finally:
            hook.remove()
        loss = None if labels is None else _labelled_loss(outputs.logits, labels[:, 1:][keep], num_items_in_batch)
        loss = self._token_loss(loss, num_items_in_batch)
        if self.decision_mode != "tokens" and extras:
            soft = self._decision_term(head, captured[-1], extras, num_items_in_batch)
            # Soft only: the decision term is the whole loss, and a weight would only rescale the learning rate.
            loss = soft if loss is None else loss + self.decision_weight * soft
        return (loss, outputs) if return_outputs else loss

    def _token_loss(self, loss: Any, num_items_in_batch: Any) -> Any:
        if loss is not None and self.args.average_tokens_across_devices and num_items_in_batch is not None:
            # As in Trainer.compute_loss: num_items_in_batch counts every rank's tokens, DDP averages.
            loss = loss * self.accelerator.num_processes
        return loss

    def _decision_term(self, head: Any, hidden: torch.Tensor, extras: dict[str, torch.Tensor],
                       num_items_in_batch: Any) -> torch.Tensor:
        """The soft-label loss of this micro-batch (0 when no row carries a target)."""
        rows = active_rows(extras["decision_positions"])
        if len(rows) == 0:
            return hidden.sum() * 0.0  # keeps the graph (and DDP's gradient hooks) intact
        states = hidden[rows, extras["decision_positions"][rows]]
        ids = extras["decision_token_ids"][rows]
        soft = candidate_loss(candidate_logits(head, states, ids), ids, extras["decision_targets"][rows],
                              self.decision_temperature)
        self._decision_losses.append(float(soft.detach()))
        if self.model_accepts_loss_kwargs and num_items_in_batch is not None:
            # Trainer divides by the accumulation steps only the losses it does not normalise itself.
            soft = soft / self.current_gradient_accumulation_steps
        return soft

    def log(self, logs: dict[str, float], *args: Any, **kwargs: Any) -> None:
        """Adds the mean decision loss since the last log line (nats; 0 = the teacher's distribution)."""
        if self._decision_losses and "loss" in logs:
            logs["decision_loss"] = round(sum(self._decision_losses) / len(self._decision_losses), 4)
            self._decision_losses.clear()
        super().log(logs, *args, **kwargs)


def _project_only(keep: torch.Tensor | None, captured: list[torch.Tensor]) -> Any:
    """A forward pre-hook for the LM head: records its whole input (the decision term reads it)
    and passes on only the positions `keep` marks, those whose next token is labelled (none when
    there are no labels)."""
    def hook(module: Any, args: tuple[Any, ...]) -> tuple[Any, ...]:
        hidden = args[0]
        captured.append(hidden)
        if keep is None:
            return (hidden[:, :0],) + args[1:]
        return (hidden[:, :-1][keep],) + args[1:]
    return hook


def _labelled_loss(logits: torch.Tensor, targets: torch.Tensor, num_items_in_batch: Any) -> torch.Tensor:
    """The causal-LM loss of transformers' `ForCausalLMLoss` from logits of the labelled positions
    only and their target tokens (in the order `_project_only` selected them): float32
    cross-entropy, summed over `num_items_in_batch` when given (gradient accumulation), else the mean."""
    if num_items_in_batch is None:
        return F.cross_entropy(logits.float(), targets)
    return F.cross_entropy(logits.float(), targets, reduction="sum") / num_items_in_batch
