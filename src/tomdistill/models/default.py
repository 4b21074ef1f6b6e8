"""`default:teacher` and `default:student`: the embedded offline models, run by the hf backend."""

from __future__ import annotations

from .base import ModelOptions
from .embedded import converted_dir, converted_folder, default_weights
from .hf import HFModel


class DefaultModel(HFModel):
    def __init__(self, name: str, options: ModelOptions) -> None:
        self.weights = default_weights(name)
        super().__init__(str(converted_folder(name)), options, spec=f"default:{name}")

    def info(self):
        info = super().info()
        info.details |= {"weights": self.weights.title, "gguf_sha256": self.weights.sha256,
                         "converted": str(converted_dir(self.weights))}
        return info
