"""Generate the bundled default training data with GFN2-xTB (tblite): ethanol MD and a periodic water box.

Writes two gzip-compressed extended-XYZ files (labels under the standard ASE keys ``energy``
[eV], ``forces`` [eV/Å] and, for the periodic set, ``stress`` [eV/Å³, ASE sign: (1/V) ∂E/∂ε,
negative when compressed]):

* ``ethanol_gfn2_md.extxyz.gz`` -- one ethanol molecule, Langevin MD at 500 K, 0.5 fs steps,
  1 ps equilibration, then a frame every 10 steps (3000 frames).
* ``water_box_gfn2_md.extxyz.gz`` -- 8 H2O in a triclinic cell at 1.00 g/cm³, Langevin MD at
  375 K (BFGS pre-relaxation of the grid start, 30 fs equilibration, then a frame every 3 fs,
  100 frames), plus copies of 30 % of the frames under a small random symmetric strain (cell and
  positions scaled together) so that the stress labels vary.

Deterministic for a given seed, machine and thread count (MD is chaotic: a last-bit difference in
a force grows over thousands of steps). ``OMP_NUM_THREADS`` defaults to 1 here because tblite's
OpenMP threads are *slower* than one thread on a busy 2-core machine (measured 38 ms vs 2 ms
per ethanol step with other jobs running) and one thread keeps the floating-point reductions in a fixed order.

Run from the repository root (about 10 minutes on 2 shared CPU cores)::

    python scripts/generate_default_data.py             # the shipped files
    python scripts/generate_default_data.py --quick --out-dir /tmp/smoke   # seconds
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before tblite loads its OpenMP runtime

import numpy as np  # noqa: E402
from ase import Atoms, units  # noqa: E402
from ase.build import molecule  # noqa: E402
from ase.calculators.singlepoint import SinglePointCalculator  # noqa: E402
from ase.geometry import cellpar_to_cell, get_distances  # noqa: E402
from ase.io import write  # noqa: E402
from ase.md.langevin import Langevin  # noqa: E402
from ase.neighborlist import natural_cutoffs, neighbor_list  # noqa: E402
from ase.optimize import BFGS  # noqa: E402

DEFAULT_OUT_DIR = Path(__file__).resolve().parents[1] / "equiformer_lite" / "resources"
ETHANOL_FILE = "ethanol_gfn2_md.extxyz.gz"
WATER_FILE = "water_box_gfn2_md.extxyz.gz"

# tblite's defaults, passed explicitly so that the data cards stay true if the defaults change.
TBLITE_SETTINGS = dict(method="GFN2-xTB", accuracy=1.0, electronic_temperature=300.0, max_iterations=250)

EQUIL_FRICTION_PER_FS = 0.1  # water box equilibration only
WATER_MASS_AMU = 18.01528
DEUTERIUM_MASS_AMU = 2.014  # propagation mass of H in the water box (see water_box_md)
# Triclinic, deliberately non-orthogonal cell shape (scaled to the target density).
WATER_CELLPAR = (1.00, 0.95, 1.05, 80.0, 95.0, 105.0)  # relative a, b, c; alpha, beta, gamma in degrees


def make_calculator():
    """A fresh GFN2-xTB calculator (tblite's ASE interface, silent)."""
    from tblite.ase import TBLite

    return TBLite(verbosity=0, **TBLITE_SETTINGS)


def tblite_version() -> str:
    from importlib.metadata import version

    return version("tblite")


# --------------------------------------------------------------------------------------------
# helpers


def labelled_copy(atoms: Atoms, info: dict) -> Atoms:
    """A clean copy (numbers, positions, cell, pbc) carrying the calculator's labels.

    The labels are taken from ``calc.results`` directly: ``atoms.get_forces()`` would apply any
    constraint, and a constrained force is not the label we want to train on.
    """
    results = atoms.calc.results
    frame = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
    labels = dict(energy=float(results["energy"]), forces=np.array(results["forces"]))
    if atoms.pbc.all():
        labels["stress"] = np.array(results["stress"])  # Voigt, eV/Å³
    frame.calc = SinglePointCalculator(frame, **labels)
    frame.info.update(info)
    return frame


def thermalize(atoms: Atoms, temperature_K: float, rng: np.random.Generator) -> None:
    """Maxwell-Boltzmann momenta at ``temperature_K`` with zero total momentum (ASE-version independent)."""
    masses = atoms.get_masses()[:, None]  # [n_atoms, 1]
    momenta = rng.standard_normal((len(atoms), 3)) * np.sqrt(masses * units.kB * temperature_K)  # [n_atoms, 3]
    momenta -= masses * momenta.sum(axis=0) / masses.sum()
    atoms.set_momenta(momenta)


def bonds(atoms: Atoms) -> set[tuple[int, int]]:
    """Covalent connectivity from ASE's natural cutoffs (used to flag bond breaking)."""
    i, j = neighbor_list("ij", atoms, natural_cutoffs(atoms, mult=1.3))
    return {(a, b) for a, b in zip(i.tolist(), j.tolist()) if a < b}


def random_symmetric_strain(rng: np.random.Generator, max_strain: float) -> np.ndarray:
    """A symmetric 3x3 strain, each of the 6 independent components uniform in [-max, max]."""
    eps = np.zeros((3, 3))
    iu = np.triu_indices(3)
    eps[iu] = rng.uniform(-max_strain, max_strain, size=6)
    return eps + np.triu(eps, 1).T


class Progress:
    """Prints elapsed time and an ETA about every 10 % of the work."""

    def __init__(self, name: str, total: int):
        self.name, self.total, self.start, self.next = name, max(total, 1), time.perf_counter(), 0.1

    def __call__(self, done: int) -> None:
        frac = done / self.total
        if frac + 1e-12 >= self.next or done == self.total:
            elapsed = time.perf_counter() - self.start
            eta = elapsed / max(frac, 1e-9) * (1 - frac)
            print(f"  [{self.name}] {100 * frac:5.1f} %  {elapsed:7.1f} s elapsed, ~{eta:6.1f} s left", flush=True)
            while self.next <= frac + 1e-12:
                self.next += 0.1


# --------------------------------------------------------------------------------------------
# data sets


def ethanol_md(n_frames: int, interval: int, equil_steps: int, temperature_K: float, timestep_fs: float,
               friction_per_fs: float, rng: np.random.Generator) -> list[Atoms]:
    """Langevin MD of one ethanol molecule; a labelled frame every ``interval`` steps after equilibration."""
    return molecule_md(molecule("CH3CH2OH"), "ethanol", n_frames, interval, equil_steps, temperature_K,
                       timestep_fs, friction_per_fs, rng)


def molecule_md(atoms: Atoms, name: str, n_frames: int, interval: int, equil_steps: int, temperature_K: float,
                timestep_fs: float, friction_per_fs: float, rng: np.random.Generator) -> list[Atoms]:
    """Langevin MD of one free molecule (GFN2-xTB); a labelled frame every ``interval`` steps after
    ``equil_steps`` of equilibration. ``name`` labels the progress lines."""
    atoms = atoms.copy()
    atoms.calc = make_calculator()
    thermalize(atoms, temperature_K, rng)
    # fixcm=False: ASE's fixcm=True does not sample NVT exactly; a free molecule may drift and rotate.
    dyn = Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature_K,
                   friction=friction_per_fs / units.fs, fixcm=False, rng=rng)
    progress = Progress(name, equil_steps + (n_frames - 1) * interval)
    reference_bonds = bonds(atoms)
    frames, broken, steps = [], 0, 0
    for chunk in [equil_steps] + [interval] * (n_frames - 1):
        for _ in range(chunk):  # step by step so that the progress line can be printed
            dyn.run(1)
            steps += 1
            progress(steps)
        atoms.get_potential_energy()  # cached after the MD step: no extra call
        broken += bonds(atoms) != reference_bonds
        frames.append(labelled_copy(atoms, dict(
            config_type="md", md_step=steps, time_fs=steps * timestep_fs, temperature_K=temperature_K,
            kinetic_temperature_K=float(atoms.get_temperature()))))
    print(f"  [{name}] frames with changed covalent connectivity: {broken} of {len(frames)}")
    return frames


def water_box(n_molecules: int, density_g_cm3: float, rng: np.random.Generator) -> Atoms:
    """``n_molecules`` randomly oriented H2O on a near-uniform grid in a triclinic cell."""
    volume = n_molecules * WATER_MASS_AMU / (density_g_cm3 * units.mol) * 1e24  # Å³
    cell = cellpar_to_cell(WATER_CELLPAR)
    cell *= (volume / abs(np.linalg.det(cell))) ** (1 / 3)
    k = int(np.ceil(n_molecules ** (1 / 3)))
    sites = [np.array(s) for s in np.ndindex(k, k, k)][:n_molecules]
    box = Atoms(cell=cell, pbc=True)
    for site in sites:
        for _ in range(1000):  # re-draw orientations that clash with molecules already placed
            mol = molecule("H2O")
            mol.rotate(float(rng.uniform(0, 360)), rng.standard_normal(3), center="COM")
            shift = (site + 0.5 + rng.uniform(-0.05, 0.05, 3)) / k
            mol.translate(shift @ cell - mol.get_center_of_mass())
            if len(box) == 0:
                break
            _, d = get_distances(mol.positions, box.positions, cell=cell, pbc=True)
            if d.min() > 1.6:
                break
        else:
            raise RuntimeError("could not place a water molecule without clashes; lower the density")
        box += mol
    return box


def water_box_md(n_molecules: int, n_frames: int, interval: int, relax_steps: int, equil_steps: int,
                 temperature_K: float, timestep_fs: float, friction_per_fs: float, strain_fraction: float,
                 max_strain: float, density_g_cm3: float, rng: np.random.Generator) -> list[Atoms]:
    """Langevin MD of a periodic water box, plus randomly strained copies of some frames.

    The grid start is first relaxed (BFGS, fixed cell, at most ``relax_steps`` steps): without
    it the box keeps releasing H-bond energy during the short trajectory and runs ~65 K hotter
    than the thermostat (measured: mean kinetic temperature 440 K for a 375 K target).
    The hydrogens are propagated with the deuterium mass so that 1 fs steps are safe: classical
    configurational sampling (positions, hence labels) does not depend on the masses, only the
    dynamics does, and only configurations are stored. A strained copy maps a frame's cell and
    positions through r -> r (1 + eps) (one extra GFN2 call); the trajectory itself continues
    unstrained, so the strain never heats the MD.
    """
    atoms = water_box(n_molecules, density_g_cm3, rng)
    masses = atoms.get_masses()
    masses[atoms.numbers == 1] = DEUTERIUM_MASS_AMU
    atoms.set_masses(masses)
    atoms.calc = make_calculator()
    n_strained = int(round(strain_fraction * n_frames))
    if strain_fraction > 0 and n_frames > 0:
        n_strained = max(n_strained, 1)
    strained = set(rng.choice(n_frames, size=n_strained, replace=False).tolist())
    progress = Progress("water", 1 + relax_steps + equil_steps + (n_frames - 1) * interval + n_strained)
    calls = 0

    def count_call() -> None:
        nonlocal calls
        calls += 1
        progress(calls)

    if relax_steps > 0:
        optimizer = BFGS(atoms, logfile=None)
        optimizer.attach(count_call)  # called once per force evaluation, the first one included
        optimizer.run(fmax=0.1, steps=relax_steps)
    else:
        atoms.get_potential_energy()
        count_call()
    thermalize(atoms, temperature_K, rng)
    dyn = Langevin(atoms, timestep_fs * units.fs, temperature_K=temperature_K,
                   friction=friction_per_fs / units.fs, fixcm=False, rng=rng)
    reference_bonds = bonds(atoms)
    frames, broken, steps = [], 0, 0
    for index, chunk in enumerate([equil_steps] + [interval] * (n_frames - 1)):
        # Strong friction while the relaxed (0 K) start heats up and sheds what relaxation is left.
        dyn.set_friction((EQUIL_FRICTION_PER_FS if index == 0 else friction_per_fs) / units.fs)
        for _ in range(chunk):
            dyn.run(1)
            steps += 1
            count_call()
        atoms.get_potential_energy()  # cached after the MD step
        broken += bonds(atoms) != reference_bonds
        info = dict(config_type="md", md_frame=index, md_step=steps, time_fs=steps * timestep_fs,
                    temperature_K=temperature_K, kinetic_temperature_K=float(atoms.get_temperature()))
        frames.append(labelled_copy(atoms, info))
        if index in strained:
            eps = random_symmetric_strain(rng, max_strain)
            copy = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=True)
            copy.set_cell(atoms.cell.array @ (np.eye(3) + eps), scale_atoms=True)
            copy.calc = make_calculator()
            copy.get_potential_energy()
            count_call()
            strain_info = dict(info, config_type="md_strained",
                               strain_voigt=eps[[0, 1, 2, 1, 0, 0], [0, 1, 2, 2, 2, 1]])  # xx yy zz yz xz xy
            strain_info.pop("kinetic_temperature_K")
            frames.append(labelled_copy(copy, strain_info))
    print(f"  [water] frames with changed covalent connectivity: {broken} of {n_frames} MD frames")
    return frames


def isolated_atom_energies() -> dict[str, dict[str, float]]:
    """GFN2-xTB energies of single H, C, O atoms in three electronic set-ups (eV).

    ``default``: as the data sets are labelled (no spin polarisation, unpaired electrons from
    the initial magnetic moments, i.e. 0; odd electron counts get one). ``high_spin``: the
    ground-state multiplicity (H doublet, C and O triplets) without spin polarisation -- differs
    from ``default`` only through the electronic entropy of the 300 K Fermi smearing.
    ``spin_polarized``: the same multiplicities with tblite's spin-polarisation term (spGFN2).
    """
    from tblite.ase import TBLite

    multiplicity = {"H": 2, "C": 3, "O": 3}
    energies: dict[str, dict[str, float]] = {}
    for symbol, mult in multiplicity.items():
        setups = {"default": {}, "high_spin": dict(multiplicity=mult),
                  "spin_polarized": dict(multiplicity=mult, spin_polarization=1.0)}
        energies[symbol] = {}
        for name, extra in setups.items():
            atom = Atoms(symbol)
            atom.calc = TBLite(verbosity=0, **TBLITE_SETTINGS, **extra)
            energies[symbol][name] = float(atom.get_potential_energy())
    return energies


# --------------------------------------------------------------------------------------------
# output


def write_extxyz_gz(path: Path, frames: list[Atoms]) -> None:
    """Extended XYZ, gzip level 9, with a fixed gzip header (no mtime, no file name) so that the
    same frames always give the same bytes and the sha256 in the data cards stays meaningful."""
    text = io.StringIO()
    write(text, frames, format="extxyz")
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9, mtime=0) as gz:
        gz.write(text.getvalue().encode())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def summarize(name: str, frames: list[Atoms], path: Path) -> dict:
    """Print and return the statistics the data cards quote."""
    e_per_atom = np.array([f.get_potential_energy() / len(f) for f in frames])  # [n_frames]
    forces = np.concatenate([f.get_forces() for f in frames])  # [n_atoms_total, 3]
    stats = dict(
        file=str(path), n_frames=len(frames), n_atoms=sorted({len(f) for f in frames}),
        size_bytes=path.stat().st_size, sha256=sha256(path),
        energy_per_atom_min=e_per_atom.min(), energy_per_atom_max=e_per_atom.max(),
        energy_per_atom_std=e_per_atom.std(), force_rms=np.sqrt(np.mean(forces**2)),
        force_component_std=forces.std(), force_max_norm=np.linalg.norm(forces, axis=1).max(),
    )
    config_types = [f.info.get("config_type") for f in frames]
    stats["config_types"] = {t: config_types.count(t) for t in sorted(set(config_types))}
    kinetic = [f.info["kinetic_temperature_K"] for f in frames if "kinetic_temperature_K" in f.info]
    if kinetic:
        stats["mean_kinetic_temperature_K"] = float(np.mean(kinetic))
    if frames[0].pbc.all():
        stress = np.array([f.get_stress() for f in frames])  # [n_frames, 6] Voigt, eV/Å³
        pressure_gpa = -stress[:, :3].mean(axis=1) / units.GPa  # [n_frames]
        stats.update(stress_component_min=stress.min(), stress_component_max=stress.max(),
                     stress_component_std=stress.std(), pressure_GPa_mean=pressure_gpa.mean(),
                     pressure_GPa_min=pressure_gpa.min(), pressure_GPa_max=pressure_gpa.max(),
                     volume_min=min(f.get_volume() for f in frames), volume_max=max(f.get_volume() for f in frames))
    print(f"{name}:")
    for key, value in stats.items():
        print(f"  {key:28s} {value:.6g}" if isinstance(value, float) else f"  {key:28s} {value}")
    return stats


# --------------------------------------------------------------------------------------------
# command line


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out-dir", type=Path, default=DEFAULT_OUT_DIR, help="where the two files are written")
    parser.add_argument("--seed", type=int, default=20261122, help="master seed (MD noise, velocities, box, strains)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny smoke-test version (20 + 5 frames, seconds); overrides the size options")
    parser.add_argument("--ethanol-frames", type=int, default=3000, help="stored frames")
    parser.add_argument("--ethanol-interval", type=int, default=10, help="MD steps between stored frames")
    parser.add_argument("--ethanol-equil-steps", type=int, default=2000, help="0.5 fs steps before the first frame")
    parser.add_argument("--ethanol-temperature", type=float, default=500.0, help="K")
    parser.add_argument("--water-molecules", type=int, default=8, help="H2O in the periodic cell")
    parser.add_argument("--water-frames", type=int, default=100, help="MD frames (strained copies come on top)")
    parser.add_argument("--water-interval", type=int, default=3, help="MD steps between stored frames")
    parser.add_argument("--water-relax-steps", type=int, default=30, help="BFGS steps on the grid start")
    parser.add_argument("--water-equil-steps", type=int, default=30, help="1 fs steps before the first frame")
    parser.add_argument("--water-temperature", type=float, default=375.0, help="K")
    parser.add_argument("--strain-fraction", type=float, default=0.3,
                        help="fraction of water MD frames that also get a strained copy")
    parser.add_argument("--max-strain", type=float, default=0.03, help="bound of each strain component")
    args = parser.parse_args(argv)
    if args.quick:
        args.ethanol_frames, args.ethanol_interval, args.ethanol_equil_steps = 20, 5, 20
        args.water_frames, args.water_interval, args.water_equil_steps, args.strain_fraction = 4, 1, 1, 0.25
        args.water_relax_steps = 1
    for name in ("ethanol_frames", "ethanol_interval", "water_frames", "water_interval", "water_molecules"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(args, name)})")
    if not 0 <= args.strain_fraction <= 1:
        parser.error(f"--strain-fraction must lie in [0, 1] (got {args.strain_fraction})")
    return args


def main(argv: list[str] | None = None) -> dict:
    """Generate both data sets; returns their statistics and the isolated-atom energies."""
    args = parse_args(argv)
    ethanol_rng, water_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(args.seed).spawn(2))
    t_start = time.perf_counter()
    print(f"GFN2-xTB via tblite {tblite_version()}; settings {TBLITE_SETTINGS}; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; seed {args.seed}", flush=True)

    atoms_e0 = isolated_atom_energies()
    print("isolated-atom energies (eV):")
    for symbol, values in atoms_e0.items():
        print(f"  {symbol}: " + ", ".join(f"{k} {v:.6f}" for k, v in values.items()))

    t0 = time.perf_counter()
    ethanol = ethanol_md(args.ethanol_frames, args.ethanol_interval, args.ethanol_equil_steps,
                         args.ethanol_temperature, timestep_fs=0.5, friction_per_fs=0.01, rng=ethanol_rng)
    ethanol_path = args.out_dir / ETHANOL_FILE
    write_extxyz_gz(ethanol_path, ethanol)
    print(f"ethanol MD done in {time.perf_counter() - t0:.1f} s", flush=True)

    t0 = time.perf_counter()
    water = water_box_md(args.water_molecules, args.water_frames, args.water_interval, args.water_relax_steps,
                         args.water_equil_steps, args.water_temperature, timestep_fs=1.0, friction_per_fs=0.05,
                         strain_fraction=args.strain_fraction, max_strain=args.max_strain,
                         density_g_cm3=1.0, rng=water_rng)
    water_path = args.out_dir / WATER_FILE
    write_extxyz_gz(water_path, water)
    print(f"water box MD done in {time.perf_counter() - t0:.1f} s", flush=True)

    result = dict(ethanol=summarize("ethanol", ethanol, ethanol_path),
                  water=summarize("water box", water, water_path),
                  isolated_atom_energies=atoms_e0, wall_time_s=time.perf_counter() - t_start)
    print(f"total wall time {result['wall_time_s']:.1f} s")
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
