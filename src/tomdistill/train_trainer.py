"""The SFT trainer `tomdistill train` uses: TRL's SFTTrainer, with a cheaper loss off GPU.

TRL 1.16 always computes the loss through its fused, chunked LM head. On CUDA/XPU that head
projects only the completion tokens; elsewhere (CPU) it projects every position, prompt and
padding included, in several float32 passes that also compute entropy and top-1 accuracy for
its metrics. Measured on 2 CPU cores (batch 4 x ~340 tokens, 135M student) that head cost
7-8 s per step against ~2 s for the model's own loss, which made `tomdistill train` 1.3x slower
than a plain PEFT loop. Off GPU this trainer therefore asks the model for its own causal-LM
loss: the same quantity (mean cross-entropy over tokens whose label is not -100, or the sum
over `num_items_in_batch` under gradient accumulation), without TRL's extra metrics.

Kept apart from train.py so that importing tomdistill never imports TRL.
"""

from __future__ import annotations

from typing import Any

from trl import SFTTrainer


class TomdistillSFTTrainer(SFTTrainer):
    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        if self.accelerator.device.type in ("cuda", "xpu"):
            return super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        outputs = model(**inputs, use_cache=False, num_items_in_batch=num_items_in_batch)
        loss = outputs.loss
        if self.args.average_tokens_across_devices and num_items_in_batch is not None:
            # As in Trainer.compute_loss: num_items_in_batch counts every rank's tokens, DDP averages.
            loss = loss * self.accelerator.num_processes
        return (loss, outputs) if return_outputs else loss
