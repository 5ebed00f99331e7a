"""Small shared helpers."""

import os

import pytest

from equiformer_lite.utils import busy_cores, free_cores


def test_busy_cores_from_cpu_time_samples():
    assert busy_cores((100.0, 400.0), (150.0, 500.0), 2) == pytest.approx(1.0)  # half the time busy on 2 cores
    assert busy_cores((0.0, 0.0), (0.0, 0.0), 4) == 0.0
    assert busy_cores((0.0, 0.0), (300.0, 100.0), 2) == 2.0  # clipped to the cores


def test_free_cores_leaves_the_busy_ones(monkeypatch):
    """From two samples of the machine's CPU time: the cores others keep busy are left to them."""
    from equiformer_lite import utils

    cores = os.cpu_count() or 1
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    monkeypatch.setattr(utils.time, "sleep", lambda s: None)
    for busy, expected in ((0.0, usable), (1.0, max(1, min(usable, cores - 1))), (float(cores), 1)):
        samples = iter([(0.0, 0.0), (busy * 100.0, cores * 100.0)])  # busy cores x 100 ticks of 100
        monkeypatch.setattr(utils, "_cpu_times", lambda: next(samples))
        assert free_cores() == expected
    monkeypatch.setattr(utils, "_cpu_times", lambda: None)  # no /proc/stat: every usable core
    assert free_cores() == usable
    monkeypatch.undo()
    assert 1 <= free_cores(0.05) <= usable  # the real machine, whatever it runs now


def test_atomic_writes_give_files_the_permissions_of_open(tmp_path):
    """mkstemp makes 0600 files; a model or a config must be readable as any file the user writes."""
    from equiformer_lite.utils import atomic_save, atomic_write_text

    previous = os.umask(0o022)
    try:
        atomic_save({"a": 1}, tmp_path / "x.pt")
        atomic_write_text(tmp_path / "x.yaml", "a: 1\n")
    finally:
        os.umask(previous)
    for name in ("x.pt", "x.yaml"):
        assert oct((tmp_path / name).stat().st_mode & 0o777) == oct(0o644), name
    assert (tmp_path / "x.yaml").read_text() == "a: 1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.pt", "x.yaml"]  # no temporary left
