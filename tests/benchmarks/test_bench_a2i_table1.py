"""Smoke test of `benchmarks/bench_a2i_table1.py`: a tiny budget runs end to end with finite metrics."""

import json
import math

from tests.benchmarks.scripts import load_script


def _load():
    return load_script("bench_a2i_table1.py")


def test_a_tiny_budget_runs_every_model_kind(tmp_path):
    bench = _load()
    out = tmp_path / "results.json"
    results = bench.main([
        "--systems", "lj_2d_fixed_n64", "--models", "a2i", "fcn", "wall", "gatv2",
        "--train-snapshots", "4", "--test-snapshots", "2", "--steps", "1", "2", "--batch-size", "2",
        "--json", str(out),
    ])
    assert [r.model for r in results] == ["a2i", "fcn", "wall", "gatv2"]
    for result in results:
        assert [c.steps for c in result.checkpoints] == ([0] if result.model == "wall" else [1, 2])
        for checkpoint in result.checkpoints:
            for name in ("atomic_mae", "atomic_mme", "atomic_nmae", "atomic_mape"):
                value = checkpoint.metrics[name]
                assert math.isfinite(value) and value > 0, (result.model, name)
                assert math.isfinite(checkpoint.metrics[f"{name}_std"]) and checkpoint.metrics[f"{name}_std"] >= 0
        assert 0.0 <= result.label_wall_share <= 1.0 and result.wall_share <= 1.0 + 1e-9
    wall = results[2]  # a step function of the wall distance (its own bins, refitted on test quantiles)
    assert wall.wall_share > 0.9, wall.wall_share
    assert results[0].paper is not None  # Table I's row for 2D LJ N = 64, fixed boundary
    assert json.loads(out.read_text())["results"][0]["system"] == "lj_2d_fixed_n64"
