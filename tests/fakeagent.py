"""A fake training adapter folder, shared by the agent tests (mock models ignore the weights)."""

from __future__ import annotations

import json
from pathlib import Path


def fake_adapter(folder: Path, student: str) -> Path:
    """An adapter folder with the files `tomdistill train` writes (weights are not real: mock models ignore them)."""
    folder.mkdir(parents=True)
    (folder / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA", "r": 8}))
    (folder / "adapter_model.safetensors").write_bytes(b"\0" * 64)
    (folder / "chat_template.jinja").write_text("{% for m in messages %}{{ m.content }}{% endfor %}")
    (folder / "train_config.json").write_text(json.dumps({"student": student, "teacher_run": "t", "config": {"r": 8},
                                                          "result": {"steps": 3, "examples": 8}}))
    (folder / "checkpoints" / "checkpoint-2").mkdir(parents=True)
    (folder / "training_args.bin").write_bytes(b"pickle")
    return folder
