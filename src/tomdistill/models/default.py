"""`default:teacher` and `default:student`: the embedded offline models, run by the hf backend."""

from __future__ import annotations

from ..errors import TomdistillError
from .embedded import EMBEDDED, converted_dir, ensure_converted
from .hf import HFModel
from .registry import ModelOptions


class DefaultModel(HFModel):
    def __init__(self, name: str, options: ModelOptions) -> None:
        if name not in EMBEDDED:
            raise TomdistillError(f"default:{name}: unknown default model; choose one of: "
                                  + ", ".join(f"default:{n}" for n in EMBEDDED))
        self.weights = EMBEDDED[name]
        folder = ensure_converted(self.weights)
        super().__init__(str(folder), options, spec=f"default:{name}")

    def info(self):
        info = super().info()
        info.details |= {"weights": self.weights.title, "gguf_sha256": self.weights.sha256,
                         "converted": str(converted_dir(self.weights))}
        return info
