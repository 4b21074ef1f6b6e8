"""One progress display: other libraries' bars off, and plain lines (no redrawn bars) in logs."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
import warnings

import pytest
from rich.console import Console

from tomdistill.cli import main
from tomdistill.progress import _QUIET, progress_bar, silence_other_progress_bars

from mockrun import mock_run_config

# What a tqdm bar leaves in a log: "Saving the dataset (1/1 shards): 100%|####| 5/5 [00:01<00:00, 3.1 examples/s]".
BAR = re.compile(r"\d+%\||\[\d\d:\d\d<\d\d:\d\d")


@pytest.fixture()
def quiet_env(monkeypatch):
    """The switches unset, and put back as they were after the test (main() sets them in this process)."""
    for name in _QUIET:
        monkeypatch.delenv(name, raising=False)


def test_other_libraries_bars_are_off_after_silencing(quiet_env, monkeypatch) -> None:
    datasets = pytest.importorskip("datasets")
    transformers = pytest.importorskip("transformers")
    import huggingface_hub.utils

    with warnings.catch_warnings():  # they warn when a variable read at their import says otherwise
        warnings.simplefilter("ignore")
        datasets.enable_progress_bars()  # imported earlier in this process, maybe with bars on
        huggingface_hub.utils.enable_progress_bars()
        transformers.utils.logging.enable_progress_bar()
    silence_other_progress_bars()
    assert datasets.is_progress_bar_enabled() is False
    assert transformers.utils.logging.is_progress_bar_enabled() is False
    assert huggingface_hub.utils.are_progress_bars_disabled()
    assert all(os.environ[name] == "1" for name in _QUIET)  # what the libraries imported later read
    monkeypatch.setenv("TQDM_DISABLE", "0")  # the user's own choice is kept
    silence_other_progress_bars()
    assert os.environ["TQDM_DISABLE"] == "0"


def test_the_cli_silences_them_before_any_is_imported() -> None:
    """In a fresh process: starting the CLI loads none of the libraries, so the variables reach each
    at its import, tqdm's plain bars (GGUF conversion) included."""
    script = (
        "import sys\n"
        "from tomdistill.cli import main\n"
        "libraries = ('tqdm', 'datasets', 'transformers', 'huggingface_hub', 'gguf')\n"
        "assert not [m for m in sys.modules if m.split('.')[0] in libraries], 'imported at start-up'\n"
        "assert main(['config', 'show']) == 0\n"
        "import datasets, tqdm\n"
        "print('QUIET', datasets.is_progress_bar_enabled(), tqdm.tqdm(range(3)).disable, file=sys.stderr)\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in _QUIET}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "QUIET False True" in done.stderr


def test_plain_lines_one_per_tenth_when_not_a_terminal() -> None:
    log = io.StringIO()
    console = Console(file=log, width=40)  # not a terminal: a file
    with progress_bar("teacher: mock:x", console) as update:
        for done in range(40, 101, 3):  # a resumed run: 40 of 100 were done before
            update(done, 100, "loss 0.5")
        update(100, 100, "loss 0.5")
    lines = log.getvalue().splitlines()
    assert [line.split(",")[0] for line in lines] == [f"teacher: mock:x: {n}/100 ({n}%)"
                                                      for n in (40, 52, 61, 70, 82, 91, 100)]
    assert "\r" not in log.getvalue() and not BAR.search(log.getvalue())
    assert lines[-1].endswith("ETA 0:00:00, loss 0.5")  # one line each, however long: never folded at 40 columns

def test_a_run_in_a_log_shows_progress_lines_and_no_bars(quiet_env, stub_train, tmp_path, capsys) -> None:
    """`tomdistill run` with output captured (not a terminal): every stage's progress as plain lines,
    and no other library's bar (the dataset stage saves with datasets, whose bars are on by default)."""
    config = tmp_path / "c.toml"
    config.write_text(mock_run_config())
    assert main(["run", str(config), "--out", str(tmp_path / "run")]) == 0, capsys.readouterr().err
    out, err = capsys.readouterr()
    assert "\r" not in out + err and not BAR.search(out + err), (out + err)[-3000:]
    for role, model in [("teacher", "mock:rate=0.3"), ("base", "mock:rate=0.9"), ("student", "mock:rate=0.9")]:
        assert re.search(rf"^{role}: {model}: (\d+)/\1 \(100%\), [\d.]+/s, elapsed ", out, re.MULTILINE), out
    code = main(["elicit", "-m", "mock:rate=0.5", "-r", "plain", "--store", str(tmp_path / "s.db"),
                 "--scenario", "team/stag_hunt", "--scenario", "sports/snowdrift", "-n", "3"])
    out, err = capsys.readouterr()
    assert code == 0 and "\r" not in out + err and not BAR.search(out + err)
    assert re.search(r"^plain \(sample\): 6/6 \(100%\)", out, re.MULTILINE), out
