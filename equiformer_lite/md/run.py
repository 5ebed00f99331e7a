"""Run molecular dynamics with a potential through its ASE calculator, watched by the guards."""

from __future__ import annotations

import csv
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Union

import numpy as np
import yaml
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
from tqdm.auto import tqdm

from ..utils import atomic_write_text
from .config import MDConfig
from .guards import BondWatch, check_state
from .plots import plot_md_log

__all__ = ["MD_FILES", "MDResult", "make_integrator", "run_md"]

# What a simulation writes into its output directory.
MD_FILES = ("trajectory.extxyz", "log.csv", "summary.json", "md_log.png", "md_config.yaml", "stopped_at.extxyz")


@dataclass
class MDResult:
    """How a simulation ended: ``status`` "completed" or "stopped" (then ``reason``)."""

    status: str
    reason: Optional[str]
    steps: int  # steps integrated (and checked)
    time_ps: float
    wall_s: float
    ns_per_day: float
    output_dir: str
    neighbor_searches: Optional[int] = None  # pair searches of the calculator's skin neighbour list

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def make_integrator(atoms: Atoms, config: MDConfig):
    """The ASE integrator of ``config.ensemble`` on ``atoms`` (which carry their calculator).

    For ``nvt`` (Langevin) a :class:`ase.constraints.FixCom` is added to ``atoms``' constraints.
    """
    dt = config.timestep_fs * units.fs
    temperature = config.temperature_K
    if config.ensemble in ("npt", "npt-berendsen") and not atoms.pbc.all():
        raise ValueError(f"md.ensemble {config.ensemble!r} needs a periodic cell (pbc all True), got pbc={atoms.pbc.tolist()}")
    if config.ensemble == "nve":
        from ase.md.verlet import VelocityVerlet

        return VelocityVerlet(atoms, timestep=dt)
    if config.ensemble == "nvt":
        from ase.constraints import FixCom
        from ase.md.langevin import Langevin

        # ASE's fixcm=True does not sample NVT exactly (worst for small molecules); a FixCom
        # constraint keeps the centre of mass and removes its 3 degrees of freedom from T.
        if not any(isinstance(c, FixCom) for c in atoms.constraints):
            atoms.set_constraint([*atoms.constraints, FixCom()])
        return Langevin(atoms, timestep=dt, temperature_K=temperature, friction=config.friction_per_fs / units.fs,
                        fixcm=False, rng=np.random.default_rng(config.seed + 1))
    if config.ensemble == "nvt-nose-hoover":
        from ase.md.nose_hoover_chain import NoseHooverChainNVT

        return NoseHooverChainNVT(atoms, timestep=dt, temperature_K=temperature, tdamp=config.tdamp_fs * units.fs)
    if config.ensemble == "npt":
        from ase.md.nose_hoover_chain import IsotropicMTKNPT

        return IsotropicMTKNPT(atoms, timestep=dt, temperature_K=temperature, pressure_au=config.pressure_GPa * units.GPa,
                               tdamp=config.tdamp_fs * units.fs, pdamp=config.pdamp_fs * units.fs)
    from ase.md.nptberendsen import NPTBerendsen

    return NPTBerendsen(atoms, timestep=dt, temperature_K=temperature, pressure_au=config.pressure_GPa * units.GPa,
                        taut=config.tdamp_fs * units.fs, taup=config.pdamp_fs * units.fs,
                        compressibility_au=config.compressibility_per_GPa / units.GPa)


def _initial_velocities(atoms: Atoms, config: MDConfig) -> None:
    temperature = config.temperature_K if config.initial_temperature_K is None else config.initial_temperature_K
    if atoms.get_velocities() is not None and np.abs(atoms.get_velocities()).max() > 0 and config.initial_temperature_K is None:
        return  # the structure brings its own velocities
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=np.random.default_rng(config.seed))
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)


def _log_row(atoms: Atoms, step: int, config: MDConfig) -> dict[str, float]:
    epot, ekin = atoms.get_potential_energy(), atoms.get_kinetic_energy()
    row = {
        "step": step, "time_ps": step * config.timestep_fs / 1000.0, "temperature_K": atoms.get_temperature(),
        "epot_eV": epot, "ekin_eV": ekin, "etot_eV": epot + ekin,
        "max_force_eV_A": float(np.linalg.norm(atoms.get_forces(), axis=1).max()),
    }
    if "forces_std_max" in atoms.calc.results:  # a committee
        row["energy_std_eV"] = atoms.calc.results["energy_std"]
        row["forces_std_max_eV_A"] = atoms.calc.results["forces_std_max"]
    if atoms.pbc.all():
        stress = atoms.get_stress(include_ideal_gas=True)  # Voigt, eV/Å^3, ASE's sign (tension positive)
        row["pressure_GPa"] = float(-stress[:3].mean() / units.GPa)
        row["volume_A3"] = atoms.get_volume()
    return row


def _frame(atoms: Atoms, step: int, config: MDConfig) -> Atoms:
    """A copy of ``atoms`` with its energy, forces (and stress) as a single-point result."""
    frame = atoms.copy()
    results = {k: atoms.calc.results[k] for k in ("energy", "forces", "stress") if k in atoms.calc.results}
    frame.calc = SinglePointCalculator(frame, **results)
    frame.info.update(step=step, time_ps=step * config.timestep_fs / 1000.0)
    return frame


def _check_output_dir(out: Path, force: bool) -> None:
    if out.exists() and not out.is_dir():
        raise ValueError(f"md output_dir {out} is a file, not a directory")
    previous = [name for name in MD_FILES if (out / name).exists()]
    if previous and not force:
        raise ValueError(f"md output_dir {out} already holds a simulation ({', '.join(previous)}): "
                         f"pass --force to replace it, or choose another output_dir")
    for name in previous:
        (out / name).unlink()


def run_md(model: Union[str, Path, Any, Calculator], atoms: Atoms, config: Optional[MDConfig] = None, *, force: bool = False) -> MDResult:
    """Integrate ``config.steps`` steps of ``config.ensemble`` from ``atoms`` (not modified).

    ``model``: a potential, a model or ``.pt2`` file, a list of these (a committee: the log then
    has its uncertainty, and ``max_force_std`` stops the run), or any ASE calculator. Writes into
    ``config.output_dir``: ``trajectory.extxyz`` (every ``write_interval`` steps, with energy,
    forces and stress), ``log.csv`` (every ``log_interval`` steps: T, potential, kinetic and total
    energy, the largest force, and for periodic cells pressure and volume), ``md_log.png``,
    ``summary.json`` and ``md_config.yaml``. A guard that fires (:func:`~equiformer_lite.md.guards.check_state`)
    or a failing model stops the run: the trajectory written so far stays, the offending state is
    written to ``stopped_at.extxyz``, and the result's status is ``"stopped"`` with the reason.
    """
    from ..calculators import EquiformerCalculator

    config = config or MDConfig()
    out = Path(config.output_dir)
    _check_output_dir(out, force)
    calc = model if isinstance(model, Calculator) else EquiformerCalculator(model, dtype=config.dtype, skin=config.neighbor_skin)
    if config.max_force_std is not None and not getattr(calc, "is_committee", False):
        raise ValueError("md.max_force_std needs a committee of models (a list of models, or a directory written by "
                         "'equiformer-lite train --committee N')")
    atoms = atoms.copy()
    atoms.calc = calc
    _initial_velocities(atoms, config)
    dyn = make_integrator(atoms, config)
    bonds = BondWatch(atoms, config.max_bond_stretch) if config.max_bond_stretch is not None else None
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "md_config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
    trajectory, rows = out / "trajectory.extxyz", []
    status, reason, done = "completed", None, 0
    start = time.perf_counter()
    bar = tqdm(total=config.steps, desc=f"md {config.ensemble}", disable=not config.progress, mininterval=1.0)
    with open(out / "log.csv", "w", newline="") as log:
        writer = None
        try:
            for step, _ in enumerate(dyn.irun(config.steps)):
                problem = check_state(atoms, max_temperature_K=config.temperature_limit, min_distance=config.min_distance,
                                      max_force_std=config.max_force_std)
                if problem is None and bonds is not None:
                    problem = bonds.check(atoms)
                if problem is not None:
                    status, reason = "stopped", f"step {step}: {problem}"
                    break
                done = step
                if step % config.log_interval == 0 or step == config.steps:
                    row = _log_row(atoms, step, config)
                    rows.append(row)
                    if writer is None:
                        writer = csv.DictWriter(log, fieldnames=list(row))
                        writer.writeheader()
                    writer.writerow(row)
                    log.flush()
                if step % config.write_interval == 0 or step == config.steps:
                    write(trajectory, _frame(atoms, step, config), format="extxyz", append=True)
                if step:
                    bar.update(1)
                    if step % config.log_interval == 0:
                        bar.set_postfix(T=f"{atoms.get_temperature():.0f} K", ns_day=f"{_ns_per_day(step, config, start):.3g}")
        except Exception as err:  # the model failed (overlapping atoms, out of memory, ...): stop, keep what is written
            status, reason = "stopped", f"step {done + 1}: the calculator failed: {type(err).__name__}: {str(err).strip().splitlines()[0] if str(err).strip() else ''}"
        finally:
            bar.close()
    wall = time.perf_counter() - start
    if status == "stopped":
        frame = atoms.copy()
        frame.info.update(reason=reason)
        write(out / "stopped_at.extxyz", frame, format="extxyz")
    if rows:
        plot_md_log(rows, out / "md_log.png", title=f"{config.ensemble}, {config.timestep_fs} fs")
    searches = getattr(getattr(calc, "neighbors", None), "builds", None)
    result = MDResult(status, reason, done, done * config.timestep_fs / 1000.0, wall, _ns_per_day(done, config, start, wall),
                      str(out), searches)
    atomic_write_text(out / "summary.json", json.dumps(result.to_dict(), indent=2))
    return result


def _ns_per_day(steps: int, config: MDConfig, start: float, wall: Optional[float] = None) -> float:
    wall = time.perf_counter() - start if wall is None else wall
    return steps * config.timestep_fs * 1e-6 * 86400.0 / wall if wall > 0 and steps else math.nan


def read_frame(path: Union[str, Path], index: int = 0) -> Atoms:
    """Frame ``index`` of a structure file. Extended XYZ (also gzipped) is streamed up to that
    frame only (ASE indexes the whole file first: seconds for a bundled MD set); other formats,
    and negative indices, go through :func:`ase.io.read`."""
    import gzip
    import io
    import itertools

    from ase.io import read

    path = Path(path)
    names = path.name.lower().removesuffix(".gz")
    try:
        if index >= 0 and names.endswith((".xyz", ".extxyz")):
            opener = gzip.open if path.name.lower().endswith(".gz") else open
            with opener(path, "rt") as fh:
                for _ in range(index):  # skip whole frames: a count line, a comment line, the atoms
                    count = int(fh.readline())
                    for _ in itertools.islice(fh, count + 1):
                        pass
                count = int(fh.readline())
                text = str(count) + "\n" + "".join(itertools.islice(fh, count + 1))
            return read(io.StringIO(text), format="extxyz")
        return read(path, index=index)
    except Exception as err:
        raise ValueError(f"cannot read frame {index} of {path}: {type(err).__name__}: {err}") from err
