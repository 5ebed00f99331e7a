"""Small shared helpers."""

import os

import pytest

from equiformer_lite.utils import busy_cores, free_cores


def test_busy_cores_from_cpu_time_samples():
    assert busy_cores((100.0, 400.0), (150.0, 500.0), 2) == pytest.approx(1.0)  # half the time busy on 2 cores
    assert busy_cores((0.0, 0.0), (0.0, 0.0), 4) == 0.0
    assert busy_cores((0.0, 0.0), (300.0, 100.0), 2) == 2.0  # clipped to the cores
    assert 1 <= free_cores(0.05) <= (os.cpu_count() or 1)
