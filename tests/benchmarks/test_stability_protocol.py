"""`benchmarks/peers/stability_run.py`, the one MD stability protocol every model of the stability
benchmark runs: a short run is stable and reports its NVE drift; a model that pulls a bond apart
is caught at the step it passes the stretch limit, not at the end of the run."""

import numpy as np
import pytest
import torch
from ase.build import molecule
from ase.io import write

from equiformer_lite import save_model
from tests.benchmarks.scripts import load_script
from tests.conftest import small_potential


@pytest.fixture(scope="module")
def protocol():
    return load_script("peers/stability_run.py")


@pytest.fixture()
def start(tmp_path):
    path = tmp_path / "ethanol.extxyz"
    write(path, molecule("CH3CH2OH"), format="extxyz")
    return path


def test_a_short_nve_run_is_stable_and_reports_its_drift(protocol, start, tmp_path):
    model = small_potential("gatv2", torch.float64)
    save_model(model, tmp_path / "model.pt")
    record = protocol.main(["--calculator", "equiformer", "--model", str(tmp_path / "model.pt"), "--frame", str(start),
                            "--ensemble", "nve", "--steps", "40", "--temperature", "300", "--threads", "1"])
    assert record["stable"] and record["failure"] is None and record["steps"] == 40
    assert record["num_bonds"] == 8  # ethanol: 5 C-H, C-C, C-O, O-H
    assert np.isfinite(record["drift_meV_per_atom_per_ps"]) and record["max_bond_deviation_A"] > 0


def test_a_bond_pulled_apart_is_caught_when_it_passes_the_limit(protocol, start, tmp_path, monkeypatch):
    from ase.calculators.calculator import Calculator, all_changes

    class PullsOneHydrogen(Calculator):
        """A constant 1 eV/Å on hydrogen 3 away from its oxygen (and the opposite on the oxygen)."""

        implemented_properties = ["energy", "forces"]

        def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
            super().calculate(atoms, properties, system_changes)
            forces = np.zeros((len(atoms), 3))
            bond = atoms.positions[3] - atoms.positions[2]
            pull = 1.0 * bond / np.linalg.norm(bond)
            forces[3], forces[2] = pull, -pull
            self.results = {"energy": -float(np.linalg.norm(bond)), "forces": forces}

    monkeypatch.setattr(protocol, "make_calculator", lambda *args: PullsOneHydrogen())
    record = protocol.main(["--calculator", "equiformer", "--model", "unused", "--frame", str(start),
                            "--ensemble", "nvt", "--steps", "2000", "--temperature", "10", "--threads", "1"])
    assert not record["stable"] and "bond 2-3 (O-H)" in record["failure"]
    assert 0.5 < record["max_bond_deviation_A"] < 0.6 and record["steps"] < 2000
