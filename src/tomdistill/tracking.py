"""Experiment trackers a training can report to (`[train] report_to`, `--report-to`): the names
transformers' Trainer accepts, and what each needs installed.

The config checks names against TRACKERS without importing transformers (importing tomdistill
stays light); tests/test_train.py checks that the table holds exactly transformers' own names.
`check_trackers` runs before any work, so a missing package is named at once, not after the
teacher was asked for hours and the student's weights were loaded.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass

from .errors import TomdistillError

#: The folder under the adapter's output folder that TensorBoard's event files go to.
TRACKING_LOGS = "runs"
#: The project name trackers that group runs by project (trackio) file the runs under.
TRACKING_PROJECT = "tomdistill"


def _installed(*modules: str) -> Callable[[], bool]:
    """A check that every one of `modules` can be imported (found, not imported: some are slow to import)."""

    def check() -> bool:
        for module in modules:
            try:
                if importlib.util.find_spec(module) is None:
                    return False
            except ModuleNotFoundError:  # a dotted name whose parent package is missing
                return False
        return True

    return check


@dataclass(frozen=True)
class Tracker:
    need: str  # what to install (or set), as the error message says it
    available: Callable[[], bool]


def _pip(package: str, *modules: str) -> Tracker:
    return Tracker(f"pip install {package}", _installed(*(modules or (package,))))


# The same tests transformers' integration_utils makes (is_<name>_available), so that what we
# accept is what its callbacks will find. TensorBoard: transformers writes through torch's
# SummaryWriter when the tensorboard package is there, else through tensorboardX (the lighter one,
# which the tracking extra installs).
TRACKERS: dict[str, Tracker] = {
    "azure_ml": _pip("azureml-core", "azureml.core.run"),
    "clearml": _pip("clearml"),
    "codecarbon": _pip("codecarbon"),
    "comet_ml": _pip("comet-ml", "comet_ml"),
    "dagshub": _pip("dagshub mlflow", "dagshub", "mlflow"),
    "dvclive": _pip("dvclive"),
    "flyte": _pip("flytekit"),
    "kubeflow": Tracker("KUBEFLOW_TRAINER_SERVER_URL set (Kubeflow's trainer sets it)",
                        lambda: os.environ.get("KUBEFLOW_TRAINER_SERVER_URL") is not None),
    "mlflow": _pip("mlflow"),
    "neptune": _pip("neptune"),
    "swanlab": _pip("swanlab"),
    "tensorboard": Tracker("pip install 'tomdistill[tracking]' (tensorboardX), or tensorboard",
                           lambda: _installed("tensorboardX")() or _installed("tensorboard")()),
    "trackio": _pip("trackio"),
    "wandb": _pip("wandb"),
}

#: The value that turns trackers off (transformers' own word for it), e.g. `--report-to none`
#: where a config file names some.
NO_TRACKER = "none"


def tracker_names(names: list[str]) -> list[str]:
    """`names` checked against TRACKERS, once each in first-named order; `["none"]` is the empty list.

    Raises ValueError (pydantic reports it naming the field) for an unknown name."""
    if names == [NO_TRACKER]:
        return []
    for name in names:
        if name not in TRACKERS:
            hint = f"; '{NO_TRACKER}' alone turns them off" if name == NO_TRACKER else ""
            raise ValueError(f"unknown tracker '{name}'{hint}; known: {', '.join(TRACKERS)}")
    return list(dict.fromkeys(names))


def check_trackers(names: list[str]) -> None:
    """Raise a TomdistillError naming what to install when a chosen tracker's library is missing."""
    missing = [f"'{name}' needs {TRACKERS[name].need}" for name in names if not TRACKERS[name].available()]
    if missing:
        raise TomdistillError("train.report_to: " + "; ".join(missing))
