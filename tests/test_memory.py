"""Per-stage peak memory: the sampler sees an allocation, and every stage a run did records its own."""

from __future__ import annotations

import gc
import json
import time

import psutil

from tomdistill.cli import main
from tomdistill.memory import PeakMemory, release_freed_memory

from mockrun import mock_run_config


def test_the_peak_of_a_block_includes_what_it_allocated() -> None:
    release_freed_memory()  # so that the allocation below needs fresh pages, not earlier free ones
    with PeakMemory(interval_s=0.01) as during:
        start = psutil.Process().memory_info().rss
        block = bytearray(300 * 2**20)  # touched below: resident, not only reserved
        block[:: 4096] = b"x" * len(block[:: 4096])
        time.sleep(0.1)  # the sampler thread runs while this one waits
        del block  # gone before the block ends: only the thread's samples saw it
    assert during.peak_bytes >= start + 200 * 2**20


def test_released_memory_leaves_the_process() -> None:
    """Freed blocks below a block still in use stay in glibc's heap (the heap cannot shrink past
    it); release hands them back. Measured: 292 MiB stayed after gc alone, 4 MiB after release."""
    process = psutil.Process()
    release_freed_memory()  # start from a trimmed heap: earlier tests' free blocks would be reused
    before = process.memory_info().rss
    chunks = [bytes(2000) + bytes([i % 256]) for i in range(200_000)]  # ~400 MiB in small blocks
    pin = bytes(3000) + b"x"  # allocated after them, still alive: the heap's top stays in use
    grown = process.memory_info().rss
    del chunks
    gc.collect()
    kept = process.memory_info().rss  # what a garbage collection alone leaves resident
    release_freed_memory()
    assert grown - before > 300 * 2**20 and pin
    assert kept - process.memory_info().rss > 200 * 2**20


def test_every_stage_that_ran_records_its_peak(tmp_path, stub_train, capsys) -> None:
    config = tmp_path / "c.toml"
    config.write_text(mock_run_config(samples=3, bootstrap=50))
    out = tmp_path / "run"
    assert main(["run", str(config), "--out", str(out)]) == 0, capsys.readouterr().err
    stages = json.loads((out / "manifest.json").read_text())["stages"]
    assert all(stage["details"]["peak_rss_mib"] > 10 for stage in stages.values())
    assert "peak" in capsys.readouterr().out


def test_process_peak_reads_each_platforms_units(monkeypatch) -> None:
    import resource
    import sys
    from types import SimpleNamespace

    from tomdistill import memory

    monkeypatch.setattr(resource, "getrusage", lambda who: SimpleNamespace(ru_maxrss=2 * 2**20))
    monkeypatch.setattr(sys, "platform", "linux")
    assert memory.process_peak_mib() == 2048  # KiB on Linux
    monkeypatch.setattr(sys, "platform", "darwin")
    assert memory.process_peak_mib() == 2  # bytes on macOS
    monkeypatch.setitem(sys.modules, "resource", None)  # Windows has no resource module: psutil's peak
    monkeypatch.setattr(memory.psutil.Process, "memory_info", lambda self: SimpleNamespace(rss=1, peak_wset=3 * 2**20))
    assert memory.process_peak_mib() == 3
