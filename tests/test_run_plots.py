"""`tomdistill runs show --plot / --json`: the heatmap's data, the PNG, and the file-safety rules.

The grid data is checked against `elicit.summarize` (what `runs show` prints), never against
numbers written here; the drawing is checked for a real PNG and for being handed that same data.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path

import numpy as np
import pytest

from tomdistill import run_plots
from tomdistill.cli import main
from tomdistill.elicit import ScenarioSummary, elicit, summarize
from tomdistill.models.registry import load_model
from tomdistill.samples import run_scenarios
from tomdistill.store import Store

from badinput import make_store, run_bad

SPLITS = ("train", "heldout_context", "heldout_game", "heldout_pgg")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def db(tmp_path_factory, library) -> Path:
    """A store with a sample run `s` (3 answers per scenario, rates that differ per cell) and a score
    run `p`, both over every split, the donation game included."""
    path = tmp_path_factory.mktemp("runplots") / "store.db"
    scenarios = [s for split in SPLITS for s in library.scenarios(split)]
    with Store(path) as store:
        elicit(store, load_model("mock:rate=0.4"), scenarios, run_name="s", samples=3)
        elicit(store, load_model("mock:rate=0.7"), scenarios, run_name="p", mode="score")
    return path


def _rows(db: Path, library, run_name: str):
    with Store(db, readonly=True) as store:
        run = store.require_run(run_name)
        scenarios = run_scenarios(store, run, library)
        return run, scenarios, summarize(store, run, scenarios)


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == PNG_MAGIC and data[12:16] == b"IHDR", "not a PNG"
    return struct.unpack(">II", data[16:24])


@pytest.mark.parametrize("run_name", ["s", "p"])
def test_every_choice_rate_sits_in_its_cell_and_nothing_else_does(db, library, run_name) -> None:
    _, scenarios, rows = _rows(db, library, run_name)
    grids = run_plots.rate_grids(scenarios, rows)
    by_id = {s.id: s for s in scenarios}
    choice = [r for r in rows if not r.numeric]
    assert [g.split for g in grids] == list(dict.fromkeys(r.split for r in choice))  # numeric-only split: no panel
    placed = 0
    for grid in grids:
        for row in (r for r in choice if r.split == grid.split):
            s = by_id[row.scenario]
            assert grid.values[grid.contexts.index(s.context.id), grid.games.index(s.game.id)] == row.rate
            placed += 1
        assert grid.values.shape == (len(grid.contexts), len(grid.games))
    assert placed == len(choice) == sum(int(np.isfinite(g.values).sum()) for g in grids)
    assert {r.scenario for r in run_plots.numeric_rows(rows)} == {r.scenario for r in rows if r.numeric} != set()


def test_a_rate_without_valid_answers_and_a_missing_pair_are_blank(library) -> None:
    scenarios = library.scenarios("train")[:3]
    rows = [ScenarioSummary(scenarios[0].id, "train", 2, 2, 0.25), ScenarioSummary(scenarios[1].id, "train", 2, 0, None)]
    (grid,) = run_plots.rate_grids(scenarios, rows)
    first, second = scenarios[0], scenarios[1]
    assert grid.values[grid.contexts.index(first.context.id), grid.games.index(first.game.id)] == 0.25
    assert math.isnan(grid.values[grid.contexts.index(second.context.id), grid.games.index(second.game.id)])
    assert int(np.isfinite(grid.values).sum()) == 1


def test_the_title_says_how_a_rate_was_measured(db, library) -> None:
    run, _, rows = _rows(db, library, "p")
    assert run_plots.measure_label(run, rows) == "exact P(C)"
    run, _, rows = _rows(db, library, "s")
    assert run_plots.measure_label(run, rows) == "share of C over 3 samples"
    uneven = [ScenarioSummary("a/b", "train", 2, 2, 0.5), ScenarioSummary("c/d", "train", 4, 4, 0.5)]
    assert run_plots.measure_label(run, uneven) == "share of C over 2-4 samples"


def test_plot_writes_a_png_drawn_from_the_run_rates(db, library, tmp_path, capsys, monkeypatch) -> None:
    drawn: list[np.ndarray] = []
    real = run_plots.grid_panel

    def spy(ax, grid, *args, **kwargs):
        drawn.append(grid.copy())
        return real(ax, grid, *args, **kwargs)

    monkeypatch.setattr(run_plots, "grid_panel", spy)
    out = tmp_path / "rates.png"
    assert main(["runs", "show", "s", "--store", str(db), "--plot", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"wrote {out}" in printed and "community/donation_game" in printed  # the left-out scenario is named
    width, height = _png_size(out)
    assert 400 < width < 4000 and 400 < height < 8000
    _, scenarios, rows = _rows(db, library, "s")
    expected = run_plots.rate_grids(scenarios, rows)
    assert len(drawn) == len(expected) == 3
    for got, grid in zip(drawn, expected):
        np.testing.assert_array_equal(got, grid.values)
    assert not list(tmp_path.glob(".*.tmp"))  # the temporary file was renamed, not left behind


def test_one_split_draws_a_smaller_figure_than_three(tmp_path, library, capsys) -> None:
    store = make_store(tmp_path / "small.db")
    small, big = tmp_path / "small.png", tmp_path / "big.png"
    assert main(["runs", "show", "sc", "--store", str(store), "--plot", str(small)]) == 0
    assert "left out" not in capsys.readouterr().out
    with Store(store) as db:
        elicit(db, load_model("mock:rate=0.5"), [s for sp in SPLITS[:3] for s in library.scenarios(sp)],
               run_name="all", mode="score")
    assert main(["runs", "show", "all", "--store", str(store), "--plot", str(big)]) == 0
    assert _png_size(small)[1] < _png_size(big)[1]


def test_an_existing_file_is_not_overwritten_without_force(db, tmp_path, capsys) -> None:
    folder = tmp_path / "mine"
    folder.mkdir()
    theirs = folder / "plot.png"
    theirs.write_bytes(b"the user's own picture")
    run_bad(["runs", "show", "s", "--store", str(db), "--plot", str(theirs)], "file exists", capsys, store=db,
            watch=folder)
    assert theirs.read_bytes() == b"the user's own picture"
    assert main(["runs", "show", "s", "--store", str(db), "--plot", str(theirs), "--force"]) == 0
    assert theirs.read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize("name, message", [("plot.pdf", "name the file *.png"), ("folder.png", "is a folder")])
def test_a_bad_plot_path_is_one_line(db, tmp_path, capsys, name, message) -> None:
    (tmp_path / "folder.png").mkdir()
    run_bad(["runs", "show", "s", "--store", str(db), "--plot", str(tmp_path / name)], message, capsys, store=db,
            watch=tmp_path)


def test_a_run_with_only_numeric_answers_has_nothing_to_plot(tmp_path, library, capsys) -> None:
    path = tmp_path / "pgg.db"
    with Store(path) as store:
        elicit(store, load_model("mock:rate=0.5"), library.scenarios("heldout_pgg"), run_name="g", samples=2)
    out = tmp_path / "g.png"
    run_bad(["runs", "show", "g", "--store", str(path), "--plot", str(out)], "no choice scenario to plot", capsys,
            store=path)
    assert not out.exists()


def test_json_lists_every_scenario_and_the_run_settings(db, library, tmp_path, capsys) -> None:
    assert main(["runs", "show", "s", "--store", str(db), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    run, scenarios, rows = _rows(db, library, "s")
    assert data["run"]["name"] == "s" and data["run"]["model"] == run.model and data["run"]["mode"] == "sample"
    assert data["run"]["settings"] == run.settings and data["run"]["seed"] == run.seed
    assert [(r["scenario"], r["split"], r["n"], r["valid"], r["rate"], r["numeric"]) for r in data["scenarios"]] == [
        (r.scenario, r.split, r.n, r.valid, r.rate, r.numeric) for r in rows]
    by_id = {s.id: s for s in scenarios}
    assert all(r["context"] == by_id[r["scenario"]].context.id and r["game"] == by_id[r["scenario"]].game.id
               for r in data["scenarios"])


def test_json_with_plot_keeps_stdout_parseable(db, tmp_path, capsys) -> None:
    out = tmp_path / "p.png"
    assert main(["runs", "show", "p", "--store", str(db), "--json", "--plot", str(out)]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["run"]["mode"] == "score"
    assert f"wrote {out}" in captured.err and _png_size(out)[0] > 0
