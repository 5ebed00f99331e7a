"""``equiformer_lite.md``: the ensembles, the outputs, and the guards that stop a simulation."""

import csv
import json
import re

import numpy as np
import pytest
import torch
from ase import Atoms, units
from ase.io import read
from ase.md.verlet import VelocityVerlet

from equiformer_lite import EquiformerCalculator, save_model
from equiformer_lite.cli import main
from equiformer_lite.md import MDConfig, run_md
from equiformer_lite.md.run import _initial_velocities
from tests.conftest import diamond, ethanol, small_potential

E0 = {"H": -13.6, "C": -1029.0, "O": -2041.0}


@pytest.fixture(scope="module")
def model():
    model = small_potential("gatv2", torch.float64)
    model.set_atomic_energies(E0)
    return model


def _config(tmp_path, **kwargs):
    return MDConfig(**{"steps": 20, "write_interval": 5, "log_interval": 5, "progress": False, "output_dir": str(tmp_path / "md"), **kwargs})


class PlantedFault(EquiformerCalculator):
    """Forces (or the whole evaluation) go bad on the ``at``-th call."""

    def __init__(self, model, at, fault="nan"):
        super().__init__(model)
        self.calls, self.at, self.fault = 0, at, fault

    def calculate(self, atoms=None, properties=("energy",), system_changes=()):
        self.calls += 1
        if self.calls == self.at and self.fault == "raise":
            raise RuntimeError("out of memory (planted)")
        super().calculate(atoms, properties, system_changes)
        if self.calls >= self.at and self.fault == "nan":
            self.results["forces"] = self.results["forces"].copy()
            self.results["forces"][3, 1] = np.nan


def _rows(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def test_nve_writes_trajectory_log_plot_and_summary_and_conserves_energy(model, tmp_path):
    result = run_md(model, ethanol(), _config(tmp_path, ensemble="nve", steps=40, timestep_fs=0.25, temperature_K=300))
    out = tmp_path / "md"
    assert result.status == "completed" and result.steps == 40 and result.reason is None
    frames = read(out / "trajectory.extxyz", index=":")
    assert [f.info["step"] for f in frames] == list(range(0, 41, 5))
    assert np.isfinite(frames[-1].get_forces()).all() and frames[-1].get_potential_energy() < 0
    rows = _rows(out / "log.csv")
    assert [int(r["step"]) for r in rows] == list(range(0, 41, 5))
    etot = np.array([float(r["etot_eV"]) for r in rows])
    ekin = np.array([float(r["ekin_eV"]) for r in rows])
    assert np.ptp(etot) < 0.02 * np.ptp(ekin) + 1e-4  # NVE: total energy flat while kinetic energy moves
    assert (out / "md_log.png").stat().st_size > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "completed"
    # The default 1 Å skin: one pair search serves many of the 41 evaluations (the first included).
    assert 1 <= summary["neighbor_searches"] < 10
    assert not (out / "stopped_at.extxyz").exists()


def test_nve_follows_ases_own_velocity_verlet(model, tmp_path):
    """The guarded loop integrates exactly what a bare ASE VelocityVerlet does."""
    config = _config(tmp_path, ensemble="nve", steps=10, write_interval=10, timestep_fs=0.5, temperature_K=400)
    run_md(model, ethanol(), config)
    ours = read(tmp_path / "md" / "trajectory.extxyz", index=-1)
    atoms = ethanol()
    _initial_velocities(atoms, config)
    atoms.calc = EquiformerCalculator(model)
    VelocityVerlet(atoms, timestep=0.5 * units.fs).run(10)
    assert np.abs(ours.positions - atoms.positions).max() < 1e-8  # extxyz keeps ~1e-8 Å


@pytest.mark.parametrize("ensemble", ["nvt", "nvt-nose-hoover"])
def test_thermostats_run_and_are_reproducible(model, tmp_path, ensemble):
    first = run_md(model, ethanol(), _config(tmp_path / "a", ensemble=ensemble, temperature_K=500))
    second = run_md(model, ethanol(), _config(tmp_path / "b", ensemble=ensemble, temperature_K=500))
    assert first.status == second.status == "completed"
    a, b = (read(tmp_path / p / "md" / "trajectory.extxyz", index=-1) for p in ("a", "b"))
    assert np.array_equal(a.positions, b.positions)
    other = run_md(model, ethanol(), _config(tmp_path / "c", ensemble=ensemble, temperature_K=500, seed=7))
    assert other.status == "completed"
    assert not np.array_equal(read(tmp_path / "c" / "md" / "trajectory.extxyz", index=-1).positions, a.positions)


def test_langevin_keeps_the_centre_of_mass_without_asess_deprecated_fixcm(model, tmp_path):
    """NVT holds the centre of mass with a FixCom constraint (exact Langevin sampling), not with
    ASE's ``fixcm=True``, which ASE warns is inexact for small molecules."""
    import warnings

    start = ethanol()
    with warnings.catch_warnings():
        warnings.simplefilter("error", FutureWarning)
        result = run_md(model, start, _config(tmp_path, ensemble="nvt", temperature_K=500))
    assert result.status == "completed" and not start.constraints  # the caller's atoms are left alone
    frames = read(tmp_path / "md" / "trajectory.extxyz", index=":")
    centres = np.array([f.get_center_of_mass() for f in frames])
    assert len(frames) > 2 and np.abs(centres - centres[0]).max() < 5e-8  # extxyz keeps 8 decimals
    assert np.abs(frames[-1].positions - frames[0].positions).max() > 1e-3  # the atoms did move


@pytest.mark.parametrize("ensemble", ["npt", "npt-berendsen"])
def test_npt_moves_the_volume_and_logs_pressure(model, tmp_path, ensemble):
    cell = diamond().repeat((2, 2, 2))
    result = run_md(model, cell, _config(tmp_path, ensemble=ensemble, pressure_GPa=5.0, temperature_K=300, pdamp_fs=50.0))
    assert result.status == "completed"
    rows = _rows(tmp_path / "md" / "log.csv")
    volumes = [float(r["volume_A3"]) for r in rows]
    assert all(np.isfinite(float(r["pressure_GPa"])) for r in rows)
    assert volumes[-1] != volumes[0]
    assert "stress" in read(tmp_path / "md" / "trajectory.extxyz", index=-1).calc.results


def test_npt_needs_a_periodic_cell(model, tmp_path):
    with pytest.raises(ValueError, match=r"md.ensemble 'npt' needs a periodic cell"):
        run_md(model, ethanol(), _config(tmp_path, ensemble="npt"))


def test_a_nan_force_stops_the_run_and_keeps_the_trajectory(model, tmp_path):
    calc = PlantedFault(model, at=13)
    result = run_md(calc, ethanol(), _config(tmp_path, ensemble="nvt"))
    out = tmp_path / "md"
    assert result.status == "stopped" and result.steps == 11
    assert result.reason == "step 12: the forces is not finite (NaN or inf)"
    frames = read(out / "trajectory.extxyz", index=":")  # intact, every frame before the fault
    assert [f.info["step"] for f in frames] == [0, 5, 10]
    assert all(np.isfinite(f.get_forces()).all() for f in frames)
    assert read(out / "stopped_at.extxyz").info["reason"] == result.reason
    assert json.loads((out / "summary.json").read_text())["status"] == "stopped"


def test_a_failing_model_stops_the_run_with_its_message(model, tmp_path):
    result = run_md(PlantedFault(model, at=4, fault="raise"), ethanol(), _config(tmp_path, ensemble="nve"))
    assert result.status == "stopped"
    assert "the calculator failed: RuntimeError: out of memory (planted)" in result.reason
    assert len(read(tmp_path / "md" / "trajectory.extxyz", index=":")) == 1


def test_a_runaway_temperature_stops_the_run(model, tmp_path):
    result = run_md(model, ethanol(), _config(tmp_path, ensemble="nve", temperature_K=3000, max_temperature_K=500))
    assert result.status == "stopped" and "above the limit 500 K (md.max_temperature_K)" in result.reason


def test_colliding_atoms_stop_the_run(model, tmp_path):
    atoms = Atoms("HH", positions=[[0, 0, 0], [1.4, 0, 0]], velocities=[[0.3, 0, 0], [-0.3, 0, 0]])
    result = run_md(model, atoms, _config(tmp_path, ensemble="nve", steps=200, min_distance=1.0, timestep_fs=0.5))
    assert result.status == "stopped"
    assert re.search(r"atoms [01] \(H\) and [01] \(H\) are 0\.9\d+ Å apart, closer than md.min_distance = 1.0 Å", result.reason)


def test_an_existing_simulation_is_not_overwritten(model, tmp_path):
    run_md(model, ethanol(), _config(tmp_path, steps=2))
    with pytest.raises(ValueError, match=r"already holds a simulation \(trajectory.extxyz, log.csv"):
        run_md(model, ethanol(), _config(tmp_path, steps=2))
    assert run_md(model, ethanol(), _config(tmp_path, steps=3), force=True).steps == 3


@pytest.mark.parametrize("raw, message", [
    ({"ensemble": "npe"}, r"md.ensemble must be one of nve, nvt, nvt-nose-hoover, npt, npt-berendsen, got 'npe'"),
    ({"steps": "many"}, r"md.steps must be an integer, got 'many'"),
    ({"timestep_fs": 50}, r"md.timestep_fs must be in \(0, 10\] fs, got 50.0"),
    ({"temperatur_K": 300}, r"unknown keys in the md config: \['temperatur_K'\]"),
    ({"ensemble": "nvt", "temperature_K": 0}, r"needs md.temperature_K > 0"),
    ({"neighbor_skin": -0.5}, r"md.neighbor_skin must be a distance >= 0 Å, got -0.5"),
], ids=["ensemble", "steps", "timestep", "unknown-key", "nvt-at-0K", "negative-skin"])
def test_a_bad_md_config_names_the_key(raw, message):
    with pytest.raises(ValueError, match=message):
        MDConfig.from_dict(raw)


def test_the_md_command(model, tmp_path, capsys):
    save_model(model, tmp_path / "model.pt")
    argv = ["md", str(tmp_path / "model.pt"), "bundled:ethanol", "--steps", "4", "--ensemble", "nve", "--output-dir", str(tmp_path / "md")]
    assert main(argv) == 0
    assert "completed: 4 steps" in capsys.readouterr().out
    assert main(argv) == 2  # refuses to overwrite
    assert "already holds a simulation" in capsys.readouterr().err
    assert main(argv + ["--force", "--temperature", "5000", "--config", _md_yaml(tmp_path)]) == 1  # stopped
    assert "the simulation stopped at step" in capsys.readouterr().err


def _md_yaml(tmp_path):
    path = tmp_path / "md.yaml"
    path.write_text("ensemble: nve\nmax_temperature_K: 1000\nprogress: false\n")
    return str(path)


def test_a_stretched_bond_stops_the_run(model, tmp_path):
    """Fu et al.'s instability criterion: a starting bond longer by more than max_bond_stretch."""
    atoms = Atoms("HH", positions=[[0, 0, 0], [0.74, 0, 0]], velocities=[[-0.2, 0, 0], [0.2, 0, 0]])
    result = run_md(model, atoms, _config(tmp_path, ensemble="nve", steps=400, max_bond_stretch=0.3, min_distance=0.0))
    assert result.status == "stopped"
    assert re.search(r"the bond H0-H1 is 1\.0\d+ Å, 0\.30\d+ Å longer than at the start \(md.max_bond_stretch = 0.3 Å\)", result.reason)
    calm = run_md(model, ethanol(), _config(tmp_path / "calm", ensemble="nve", steps=10, max_bond_stretch=0.5, temperature_K=100))
    assert calm.status == "completed"
