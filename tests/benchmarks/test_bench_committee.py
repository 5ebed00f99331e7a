"""`benchmarks/bench_committee.py`: its per-structure error and spread are those of the committee
mean against the labels, and its rank correlation orders them."""

import numpy as np
import pytest

from equiformer_lite import EquiformerCalculator
from tests.benchmarks.scripts import load_script
from tests.calculators.test_committee import _members
from tests.train.conftest import emt_frames


@pytest.fixture(scope="module")
def bench():
    return load_script("bench_committee.py")


def test_per_structure_scores_the_committee_mean_against_the_labels(bench):
    members = _members(3)
    frames = emt_frames(3, seed=7)
    values = bench.per_structure(EquiformerCalculator(members), frames)
    for k, atoms in enumerate(frames):
        forces = []
        for member in members:
            probe = atoms.copy()
            probe.calc = EquiformerCalculator(member)
            forces.append(probe.get_forces())
        forces = np.stack(forces)  # [members, N, 3]
        error = np.abs(forces.mean(axis=0) - atoms.get_forces()).mean()
        spread = np.linalg.norm(forces.std(axis=0), axis=1)  # [N]
        assert values["force_mae"][k] == pytest.approx(error, rel=1e-9)
        assert values["force_std_mean"][k] == pytest.approx(spread.mean(), rel=1e-9)
        assert values["force_std_max"][k] == pytest.approx(spread.max(), rel=1e-9)
    assert min(values["force_std_mean"]) > 0


def test_spearman_ranks_and_the_summary_reports_meV(bench):
    assert bench.spearman([0.1, 0.2, 0.3, 0.4], [1.0, 3.0, 7.0, 20.0]) == pytest.approx(1.0)
    assert bench.spearman([0.1, 0.2, 0.3, 0.4], [20.0, 7.0, 3.0, 1.0]) == pytest.approx(-1.0)
    row = bench.summarize("s", {"force_mae": [0.01, 0.03], "force_std_mean": [0.002, 0.004], "force_std_max": [0.005, 0.009],
                                "energy_abs_err_per_atom": [0.0, 0.0]})
    assert row["force_mae_meV_A"] == pytest.approx(20.0) and row["largest_force_std_meV_A"] == pytest.approx(9.0)
    assert row["spearman_std_vs_error"] == pytest.approx(1.0)
