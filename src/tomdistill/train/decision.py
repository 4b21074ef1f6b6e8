"""The soft-label decision loss: the student's distribution over the actions, read where the
decision token is predicted, against the teacher's distribution for the scenario (forward KL).

The dataset's reply starts with the decision ("C\nMotivation: ..."), right where score mode
reads it, so the logits at the last prompt position give the student's P(action) exactly as
evaluation measures it: each action's probability is the mass of the tokens that start it ("C"
and " C", `token_variants`, the same helper the hf backend scores with), renormalised over the
actions, at the temperature the teacher's targets hold at. The loss is the cross-entropy of
that distribution against the teacher's: forward KL up to the teacher's (constant) entropy. It
is computed on action strings through the student's own tokenizer, so any teacher works. Since
it renormalises over the actions, it needs the logits of the candidate tokens only.

`DecisionCollator` wraps TRL's collator: it finds each row's decision position (its first label),
turns the targets into tensors and, in "soft+tokens" mode, removes the decision token from the
token loss so the two losses do not pull on it at once. `decision_loss` computes the term from the
LM head's input, in float32 (bf16 logits quantise P(action) to a few dozen values).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import torch

from ..config import DecisionLoss
from ..dataset import TARGET_COLUMN
from ..models.base import token_variants

_TEXT_COLUMNS = ("prompt", "completion", "messages")
#: Batch keys the collator adds; the trainer pops them before the model's forward pass.
BATCH_KEYS = ("decision_positions", "decision_token_ids", "decision_targets")


class DecisionCollator:
    """TRL's collator plus, per row, the decision position, the candidate token ids and the target."""

    def __init__(self, base: Callable[[list[dict[str, Any]]], dict[str, Any]], encode: Callable[[str], list[int]],
                 mode: DecisionLoss) -> None:
        self.base, self.encode, self.mode = base, encode, mode
        self._ids: dict[str, list[int]] = {}
        #: Rows with a target that cannot be read at the decision token (see __call__): trained on
        #: tokens only, counted here.
        self.skipped_rows = 0

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        targets = [_target(e.get(TARGET_COLUMN)) for e in examples]
        batch = self.base([{k: v for k, v in e.items() if k != TARGET_COLUMN and k not in _TEXT_COLUMNS}
                           for e in examples])
        labels = batch["labels"]
        positions, rows = [], []
        for row, target in enumerate(targets):
            first = int((labels[row] != -100).nonzero()[0]) if bool((labels[row] != -100).any()) else -1
            ids = [self.token_ids(a) for a in target] if target else []
            # Skipped: no target, an action no single token starts (its mass could not be read),
            # or a first reply token that is no action's (the template merged it into the prompt).
            if first < 1 or not ids or not all(ids) or not any(int(labels[row, first]) in i for i in ids):
                self.skipped_rows += bool(target)
                positions.append(-1)
                rows.append(([], []))
                continue
            positions.append(first - 1)  # the logits there predict the decision token
            rows.append((ids, list(target.values())))
            if self.mode == "soft+tokens":
                labels[row, first] = -100
        batch.update(_pack(positions, rows))
        return batch

    def token_ids(self, action: str) -> list[int]:
        """Ids of the single tokens that start a reply with `action` ("C", " C")."""
        if action not in self._ids:
            self._ids[action] = [v[0] for v in token_variants(action, self.encode) if len(v) == 1]
        return self._ids[action]


def _target(encoded: Any) -> dict[str, float]:
    """A row's target: {action: P}, or {} for a row without one ('' or missing)."""
    return json.loads(encoded) if isinstance(encoded, str) and encoded else {}


def _pack(positions: list[int], rows: list[tuple[list[list[int]], list[float]]]) -> dict[str, torch.Tensor]:
    """Tensors: positions (B,), token ids (B, K, V) padded with -1, targets (B, K) padded with 0."""
    k = max((len(ids) for ids, _ in rows), default=0) or 1
    v = max((len(i) for ids, _ in rows for i in ids), default=0) or 1
    token_ids = torch.full((len(rows), k, v), -1, dtype=torch.long)
    targets = torch.zeros((len(rows), k), dtype=torch.float32)
    for b, (ids, probs) in enumerate(rows):
        for j, (i, p) in enumerate(zip(ids, probs)):
            token_ids[b, j, : len(i)] = torch.tensor(i)
            targets[b, j] = p
    return {"decision_positions": torch.tensor(positions), "decision_token_ids": token_ids,
            "decision_targets": targets}


def candidate_logits(head: torch.nn.Module, hidden: torch.Tensor, token_ids: torch.Tensor) -> torch.Tensor:
    """fp32 logits of the LM head for the candidate tokens only: (rows, K, V) for hidden states
    (rows, hidden) and `token_ids` (rows, K, V) padded with -1 (-inf there).

    The loss renormalises over the actions, so the softmax's normaliser over the whole vocabulary
    cancels and only these few logits matter. Projecting the whole vocabulary instead made an
    fp32 copy of the head each step (545 MB for Qwen2.5-0.5B's 151,936 x 896 head), kept for the
    backward pass."""
    weight = getattr(head, "weight", None)
    ids = token_ids.clamp(min=0)
    if weight is not None and weight.dim() == 2 and weight.shape[1] == hidden.shape[-1]:
        rows = weight[ids].float()  # (rows, K, V, hidden)
        logits = torch.einsum("rh,rkvh->rkv", hidden.float(), rows)
        bias = getattr(head, "bias", None)
        if bias is not None:
            logits = logits + bias[ids].float()
    else:
        # Sharded weights (DeepSpeed ZeRO-3, FSDP): the head gathers them in its own forward, in its dtype.
        full = head(hidden).float()
        logits = full.gather(1, ids.flatten(1)).view(ids.shape)
    return logits.masked_fill(token_ids < 0, float("-inf"))


def candidate_loss(logits: torch.Tensor, token_ids: torch.Tensor, targets: torch.Tensor,
                   temperature: float) -> torch.Tensor:
    """Mean over rows of the cross-entropy between the teacher's targets (rows, K) and the
    student's P(action): each action's mass is that of the tokens that start it, renormalised
    over the actions. `logits` (rows, K, V) are the candidates' (`candidate_logits`)."""
    scaled = logits / (temperature or 1.0)  # T = 0 targets are one-hot: compare at T = 1
    per_action = torch.logsumexp(scaled, dim=-1)  # (rows, K): log mass of each action's tokens, up to a constant
    valid = token_ids[:, :, 0] >= 0
    per_action = per_action.masked_fill(~valid, float("-inf"))
    log_q = per_action - torch.logsumexp(per_action, dim=-1, keepdim=True)
    cross = -(targets * log_q.masked_fill(~valid, 0.0)).sum(dim=-1)
    return cross.mean()


def decision_loss(logits: torch.Tensor, token_ids: torch.Tensor, targets: torch.Tensor,
                  temperature: float) -> torch.Tensor:
    """`candidate_loss` from whole-vocabulary logits (rows, vocab) at the decision positions."""
    gathered = logits.float().gather(1, token_ids.clamp(min=0).flatten(1)).view(token_ids.shape)
    return candidate_loss(gathered.masked_fill(token_ids < 0, float("-inf")), token_ids, targets, temperature)


def active_rows(positions: torch.Tensor) -> torch.Tensor:
    """Indexes of the rows that carry a decision target."""
    return (positions >= 0).nonzero().flatten()
