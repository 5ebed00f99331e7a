"""`benchmarks/bench_stability.py`: its tables report every seed, and the timestep table the
mean, spread and size of the drift over seeds at each NVE timestep."""

import pytest

from tests.benchmarks.scripts import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_stability.py")


def _run(ensemble, seed, drift=None, dt=0.5, stable=True):
    record = {"ensemble": ensemble, "seed": seed, "stable": stable, "time_ps": 1.0, "max_bond_deviation_A": 0.1 + seed / 100,
              "timestep_fs": dt}
    if ensemble == "nve":
        record.update(drift_meV_per_atom_per_ps=drift, etot_std_meV_per_atom=0.08 * (dt / 0.5) ** 2)
    return record


def test_the_timestep_table_gives_mean_spread_and_size_of_the_drift(bench):
    runs = [_run("nvt", 0), _run("nvt", 1),
            _run("nve", 0, 0.3), _run("nve", 1, -0.1), _run("nve", 2, 0.1),
            _run("nve", 0, 0.02, dt=0.25), _run("nve", 1, -0.04, dt=0.25), _run("nve", 2, 0.0, dt=0.25, stable=False)]
    lines = bench.table({"model A": runs})
    assert lines[2] == "| model A | 2/2 | 1.000, 1.000 | 0.110 | 0.3; -0.1; 0.1 | 0.08; 0.08; 0.08 |"
    rows = [line for line in lines if line.startswith("| model A | 0.")]
    # 0.5 fs: mean 0.1, sample std 0.2, mean |drift| 0.1667; 0.25 fs: the unstable seed is left out.
    assert rows == ["| model A | 0.25 | 2 | -0.01 ± 0.042 | 0.03 | 0.02 |",
                    "| model A | 0.5 | 3 | 0.1 ± 0.2 | 0.167 | 0.08 |"]


def test_one_timestep_gives_no_timestep_table(bench):
    lines = bench.table({"model A": [_run("nvt", 0), _run("nve", 0, 0.3)]})
    assert len(lines) == 3
