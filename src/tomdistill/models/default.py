"""`default:teacher` and `default:student`: the embedded offline models, run by the hf backend."""

from __future__ import annotations

from .embedded import EMBEDDED, converted_dir
from .hf import HFModel
from .registry import ModelOptions, local_model_path


class DefaultModel(HFModel):
    def __init__(self, name: str, options: ModelOptions) -> None:
        folder = local_model_path(f"default:{name}")
        self.weights = EMBEDDED[name]
        super().__init__(folder, options, spec=f"default:{name}")

    def info(self):
        info = super().info()
        info.details |= {"weights": self.weights.title, "gguf_sha256": self.weights.sha256,
                         "converted": str(converted_dir(self.weights))}
        return info
