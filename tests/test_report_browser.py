"""The HTML reports as a reader sees them: report.html (from the committed real eval.json files) and
a play report, loaded in headless Chromium at a laptop width, screenshotted, and checked for
console errors, broken images, failed requests, overlapping text, wrapped table cells and
content wider than the window.

Chromium is Debian's `chromium` package, which the README's test command installs where it is
missing; Playwright drives it (no browser download). Without it the tests are skipped, unless
TOMDISTILL_BROWSER_REQUIRED is set (CI sets it, so a lost browser fails there instead of hiding).
Set TOMDISTILL_SCREENSHOTS to a folder to keep the full-page screenshots for looking at them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tomdistill.agents.play import play
from tomdistill.agents.play_report import summarize, write_play_report
from tomdistill.agents.strategies import strategy
from tomdistill.evaluate import load_report
from tomdistill.evaluate.report import write_report
from tomdistill.store import Store

ROOT = Path(__file__).parent.parent
WIDTH, HEIGHT = 1280, 800  # a laptop window
TOLERANCE = 2.0  # px: boxes that touch, or overlap by anti-aliasing slack, are not a layout bug
CHROMIUM = next(filter(None, map(shutil.which, ("chromium", "chromium-browser"))), None)

# Every box a reader reads: one rectangle per line of each visible text node (Range.getClientRects
# gives a wrapped text node one rectangle per line), plus every image. Text nodes, not elements:
# an element's box also covers its children and padding, and inline elements on one line sit side
# by side, so comparing elements would flag every <b> inside its <p>. Rectangles are in page
# coordinates, so the whole page is checked, not just the first screen.
_BOXES_JS = """() => {
  const boxes = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const style = getComputedStyle(node.parentElement);
    if (!node.textContent.trim() || style.visibility !== 'visible' || Number(style.opacity) === 0) continue;
    const range = document.createRange();
    range.selectNodeContents(node);
    for (const r of range.getClientRects()) {
      if (r.width > 0 && r.height > 0) boxes.push({what: node.textContent.trim().slice(0, 40),
        x: r.left + scrollX, y: r.top + scrollY, w: r.width, h: r.height});
    }
  }
  for (const img of document.images) {
    const r = img.getBoundingClientRect();
    boxes.push({what: '<img ' + (img.alt || img.src.slice(0, 30)) + '>', x: r.left + scrollX, y: r.top + scrollY,
                w: r.width, h: r.height});
  }
  return boxes;
}"""

# Images that did not load (a data: URI that does not decode counts: it is in no request log).
_BROKEN_IMAGES_JS = "() => [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src.slice(-80))"

# Content wider than the window: the page scrolls sideways, or an element clips or scrolls wide content.
_OVERFLOW_JS = """() => {
  const page = document.documentElement;
  const wide = page.scrollWidth > page.clientWidth + 1 ? [`page ${page.scrollWidth}px > ${page.clientWidth}px`] : [];
  for (const el of document.body.querySelectorAll('*')) {
    const overflow = getComputedStyle(el).overflowX;
    if (overflow !== 'visible' && el.scrollWidth > el.clientWidth + 1) wide.push(`<${el.localName}> ${el.scrollWidth}px`);
  }
  return wide;
}"""

# Table data cells on more than one line: the reports' cells are short values ("48.0 (exact)",
# "[95.8, 98.4]"), and one split over two lines reads as two values.
_WRAPPED_CELLS_JS = """() => [...document.querySelectorAll('td')].filter(td => {
  const range = document.createRange();
  range.selectNodeContents(td);
  return new Set([...range.getClientRects()].filter(r => r.width > 0).map(r => Math.round(r.top))).size > 1;
}).map(td => td.textContent.trim().slice(0, 40))"""


@dataclass
class PageProblems:
    """What went wrong while a page loaded and how it laid out; empty lists when nothing did."""

    errors: list[str] = field(default_factory=list)  # console errors and uncaught exceptions
    failed: list[str] = field(default_factory=list)  # failed requests and images that did not load
    overlaps: list[str] = field(default_factory=list)
    wrapped_cells: list[str] = field(default_factory=list)
    overflow: list[str] = field(default_factory=list)

    def found(self) -> dict[str, list[str]]:
        return {name: items for name, items in vars(self).items() if items}


def overlapping(boxes: list[dict[str, Any]], tolerance: float = TOLERANCE) -> list[str]:
    """Pairs of boxes that intersect by more than `tolerance` px in both directions.

    Sorted by top edge, each box is compared only with those starting above its bottom."""
    boxes = sorted(boxes, key=lambda b: b["y"])
    found = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if b["y"] >= a["y"] + a["h"] - tolerance:
                break
            across = min(a["x"] + a["w"], b["x"] + b["w"]) - max(a["x"], b["x"])
            down = min(a["y"] + a["h"], b["y"] + b["h"]) - max(a["y"], b["y"])
            if across > tolerance and down > tolerance:
                found.append(f"{a['what']!r} and {b['what']!r} overlap by {across:.0f} x {down:.0f} px "
                             f"at ({b['x']:.0f}, {b['y']:.0f})")
    return found


def load_and_check(browser: Any, url: str, screenshot: Path) -> PageProblems:
    """Load `url` at WIDTH x HEIGHT, save a full-page screenshot, and return what went wrong."""
    problems = PageProblems()
    page = browser.new_page(viewport={"width": WIDTH, "height": HEIGHT})
    # Listeners first: errors during loading are the ones that matter most.
    page.on("console", lambda msg: msg.type == "error" and problems.errors.append(f"console: {msg.text}"))
    page.on("pageerror", lambda exc: problems.errors.append(f"uncaught: {exc}"))
    # The end of a URL names the file (a long temporary path would push it out of the first 80 characters).
    page.on("requestfailed", lambda req: problems.failed.append(f"{req.url[-80:]}: {req.failure}"))
    try:
        page.goto(url, wait_until="load")
        problems.failed += [f"image did not load: {src}" for src in page.evaluate(_BROKEN_IMAGES_JS)]
        problems.overlaps = overlapping(page.evaluate(_BOXES_JS))
        problems.wrapped_cells = page.evaluate(_WRAPPED_CELLS_JS)
        problems.overflow = page.evaluate(_OVERFLOW_JS)
        page.screenshot(path=str(screenshot), full_page=True)
    finally:
        page.close()
    if keep := os.environ.get("TOMDISTILL_SCREENSHOTS"):
        Path(keep).mkdir(parents=True, exist_ok=True)
        shutil.copy(screenshot, Path(keep) / screenshot.name)
    return problems


def _missing() -> str | None:
    """Why the browser tests cannot run here, or None."""
    if CHROMIUM is None:
        return "no chromium on PATH: the README's test command installs Debian's chromium package"
    if importlib.util.find_spec("playwright") is None:
        return "playwright is not installed: it is in the test extra (pip install -e '.[test]')"
    return None


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if reason := _missing():
        if os.environ.get("TOMDISTILL_BROWSER_REQUIRED"):  # CI: a lost browser must not pass as a skip
            pytest.fail(f"TOMDISTILL_BROWSER_REQUIRED is set, but {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        # Debian's build, not a Playwright download: the test command installs it, and CI has no
        # network for Playwright's own browsers.
        launched = driver.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture(scope="module")
def reports(tmp_path_factory, library) -> dict[str, Path]:
    """report.html of both committed real runs, and a play report of three strategies."""
    out = tmp_path_factory.mktemp("reports")
    pages = {}
    for run in ("default-run", "planted-run"):
        pages[run] = write_report(load_report(ROOT / "docs" / f"{run}-eval.json"), out / run)["html"]
    players = {"tit-for-tat": strategy("tit-for-tat"), "random": strategy("random"), "always-C": strategy("always-C")}
    with Store(out / "play.db") as store:
        result = play(store, players, library.scenario("diplomacy/stag_hunt"), run="browser", rounds=3, pairs=2, seed=1)
        pages["play"] = write_play_report(summarize(result, str(store.path)), out / "play")["html"]
    return pages


@pytest.mark.parametrize("name", ["default-run", "planted-run", "play"])
def test_report_renders_cleanly(browser, reports, name, tmp_path) -> None:
    shot = tmp_path / f"{name}.png"
    problems = load_and_check(browser, reports[name].as_uri(), shot)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not problems.found(), f"{name}: {problems.found()} (screenshot: {shot})"


_BROKEN_PAGE = """<!doctype html><html><head><meta charset="utf-8"></head><body style="margin:0">
<p style="width:300px">Clean inline text: <b>bold</b> <code>code</code> <a href="#">link</a> <i>italic</i>,
<sub>sub</sub> and <sup>sup</sup>, then <b>bold text that wraps</b> over several lines of this narrow paragraph,
which is no overlap at all.</p>
<table><tr><td>one cell</td><td>another</td></tr></table>
<img src="missing.png" alt="missing">
<script>console.error("deliberate")</script><script>throw new Error("uncaught on purpose")</script>
<p style="position:absolute;top:300px;left:10px">First positioned paragraph</p>
<p style="position:absolute;top:305px;left:40px">Second positioned paragraph</p>
<table style="width:60px"><tr><td>a cell that wraps</td></tr></table>
<div style="width:3000px">wider than the window</div>
</body></html>"""


def test_each_check_catches_a_broken_page(browser, tmp_path) -> None:
    path = tmp_path / "broken.html"
    path.write_text(_BROKEN_PAGE)
    problems = load_and_check(browser, path.as_uri(), tmp_path / "broken.png")
    assert any("deliberate" in e for e in problems.errors) and any("uncaught on purpose" in e for e in problems.errors)
    assert any("missing.png" in f for f in problems.failed)
    # Exactly the two positioned paragraphs: inline elements and wrapped lines are not overlaps.
    assert len(problems.overlaps) == 1 and "positioned paragraph" in problems.overlaps[0]
    assert problems.wrapped_cells == ["a cell that wraps"]
    assert problems.overflow and "page 3000px" in problems.overflow[0]


def test_overlap_tolerance() -> None:
    box = {"what": "a", "x": 0, "y": 0, "w": 100, "h": 20}
    touching = {**box, "what": "b", "x": 100 - TOLERANCE}  # side by side on one line, edges within slack
    below = {**box, "what": "c", "y": 20 - TOLERANCE}  # the next line, line boxes meeting
    assert overlapping([box, touching, below]) == []
    assert len(overlapping([box, {**box, "what": "d", "x": 50, "y": 10}])) == 1
