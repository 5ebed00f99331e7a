"""Smoke test of scripts/generate_default_data.py: the --quick run, read back as ASE reads it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tblite")

from ase.io import read  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "generate_default_data.py"


def load_script():
    spec = importlib.util.spec_from_file_location("generate_default_data", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    module = load_script()
    out = tmp_path_factory.mktemp("default_data")
    result = module.main(["--quick", "--out-dir", str(out)])
    return module, out, result


def check_labels(frames):
    for atoms in frames:
        energy, forces = atoms.get_potential_energy(), atoms.get_forces()
        assert np.isfinite(energy)
        assert forces.shape == (len(atoms), 3)
        assert np.all(np.isfinite(forces))
        assert np.abs(forces).max() > 1e-3  # real labels, not a zero-filled column
    energies = np.array([a.get_potential_energy() for a in frames])
    assert np.ptp(energies) > 0  # frames differ


def test_ethanol_file(quick_run):
    module, out, _ = quick_run
    frames = read(out / module.ETHANOL_FILE, index=":")
    assert len(frames) == 20
    assert all(a.get_chemical_formula() == "C2H6O" and not a.pbc.any() for a in frames)
    check_labels(frames)


def test_water_file(quick_run):
    module, out, _ = quick_run
    frames = read(out / module.WATER_FILE, index=":")
    assert len(frames) == 5
    assert [a.info["config_type"] for a in frames].count("md_strained") == 1
    check_labels(frames)
    for atoms in frames:
        assert atoms.pbc.all()
        assert set(atoms.get_chemical_symbols()) == {"H", "O"}
        voigt, full = atoms.get_stress(), atoms.get_stress(voigt=False)
        assert voigt.shape == (6,) and full.shape == (3, 3)
        assert np.all(np.isfinite(full)) and np.allclose(full, full.T)
    # the strained copy has a different cell and stress from the MD frame it was made from
    i = next(k for k, a in enumerate(frames) if a.info["config_type"] == "md_strained")
    assert not np.allclose(frames[i].cell, frames[i - 1].cell)
    assert not np.allclose(frames[i].get_stress(), frames[i - 1].get_stress())
    cell_angles = frames[0].cell.cellpar()[3:]
    assert np.abs(cell_angles - 90).max() > 5  # triclinic, not cubic


@pytest.mark.parametrize("which", ["ETHANOL_FILE", "WATER_FILE"])
def test_labels_match_a_fresh_gfn2_call(quick_run, which):
    """Labels in the file equal a from-scratch GFN2-xTB calculation on the stored geometry."""
    module, out, _ = quick_run
    # the last plain MD frame: labelled by the MD's calculator, which restarts each SCF from the
    # previous step's density
    stored = [a for a in read(out / getattr(module, which), index=":") if a.info["config_type"] == "md"][-1]
    fresh = stored.copy()
    fresh.calc = module.make_calculator()
    assert abs(fresh.get_potential_energy() - stored.get_potential_energy()) < 1e-6
    # forces carry the SCF-restart noise of the MD calculator (measured ~1e-4 eV/Å at most)
    assert np.abs(fresh.get_forces() - stored.get_forces()).max() < 1e-3
    if stored.pbc.all():
        assert np.abs(fresh.get_stress() - stored.get_stress()).max() < 1e-5


def test_isolated_atom_energies(quick_run):
    _, _, result = quick_run
    e0 = result["isolated_atom_energies"]
    assert set(e0) == {"H", "C", "O"}
    # GFN2-xTB valence-only scale: H about -10.7 eV, C about -48.8 eV, O about -102.6 eV
    assert e0["H"]["default"] == pytest.approx(-10.7072, abs=1e-3)
    assert e0["C"]["default"] == pytest.approx(-48.8474, abs=1e-3)
    assert e0["O"]["default"] == pytest.approx(-102.5712, abs=1e-3)
