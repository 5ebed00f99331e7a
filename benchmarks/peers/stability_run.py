"""One MD stability run of a trained potential, after Fu et al. (2022), "Forces are not enough".

Runs in the project's environment (``--calculator equiformer``) and in a peer's own virtual
environment (``--calculator mace``) with the same code: ASE's integrators and the calculator
of :mod:`score`, nothing of this package. Prints one JSON line.

    python benchmarks/peers/stability_run.py --calculator equiformer --model runs/default/model.pt \
        --frame start.extxyz --ensemble nvt --seed 0 --steps 4000 --temperature 500

``nvt``: Langevin at ``--temperature`` (friction 0.01/fs, 0.5 fs steps) from Maxwell-Boltzmann
velocities of seed ``--seed``. The run is *unstable* at the first step at which a bond of the
starting structure (atoms closer than 1.2x the sum of their covalent radii) is more than
``--max-stretch`` Å longer or shorter than at the start, or the energy or a force is not finite;
the time of that step is the time to instability. ``nve``: velocity Verlet from the same kind of start; the drift of the total energy
is the slope of a straight-line fit, in meV/atom/ps, and its standard deviation is reported too.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from score import make_calculator  # noqa: E402


def starting_bonds(atoms):
    """Index pairs bonded in ``atoms`` (closer than 1.2x the sum of their covalent radii, ASE's
    natural cutoffs) and their lengths, Å."""
    from ase.neighborlist import natural_cutoffs, neighbor_list

    i, j, d = neighbor_list("ijd", atoms, natural_cutoffs(atoms, mult=1.2))
    keep = i < j
    return i[keep], j[keep], d[keep]


def run(args) -> dict:
    import torch
    from ase import units
    from ase.io import read
    from ase.md.langevin import Langevin
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary, ZeroRotation
    from ase.md.verlet import VelocityVerlet

    torch.set_num_threads(args.threads)
    atoms = read(args.frame, index=0)
    atoms.calc = make_calculator(args.calculator, args.model, args.dtype)
    rng = np.random.default_rng(args.seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=args.temperature, rng=rng)
    Stationary(atoms)
    if not atoms.pbc.any():
        ZeroRotation(atoms)
    bi, bj, b0 = starting_bonds(atoms)
    dt = args.timestep_fs * units.fs
    if args.ensemble == "nvt":
        dyn = Langevin(atoms, dt, temperature_K=args.temperature, friction=args.friction_per_fs / units.fs,
                       fixcm=False, rng=np.random.default_rng(args.seed + 1000))
    else:
        dyn = VelocityVerlet(atoms, dt)
    record = {"calculator": args.calculator, "model": args.model, "ensemble": args.ensemble, "seed": args.seed,
              "temperature_K": args.temperature, "timestep_fs": args.timestep_fs, "steps_asked": args.steps,
              "num_atoms": len(atoms), "num_bonds": int(len(b0)), "max_stretch_A": args.max_stretch}
    times, etot = [], []
    failure, steps_done, worst = None, 0, 0.0
    start = time.perf_counter()
    for step in range(args.steps + 1):
        if step:
            dyn.run(1)
        steps_done = step
        energy = atoms.get_potential_energy()
        forces = atoms.get_forces()
        if not (np.isfinite(energy) and np.isfinite(forces).all()):
            failure = "non-finite energy or forces"
            break
        stretch = np.abs(atoms.get_distances(bi, bj, mic=True, vector=False) - b0) if len(b0) else np.zeros(1)
        worst = max(worst, float(stretch.max()))
        if stretch.max() > args.max_stretch:
            k = int(np.argmax(stretch))
            failure = (f"bond {int(bi[k])}-{int(bj[k])} ({atoms.get_chemical_symbols()[bi[k]]}-"
                       f"{atoms.get_chemical_symbols()[bj[k]]}) {stretch[k]:.2f} A off its starting length")
            break
        if step % args.log_interval == 0:
            times.append(step * args.timestep_fs / 1000.0)
            etot.append(energy + atoms.get_kinetic_energy())
    wall = time.perf_counter() - start
    record.update({"stable": failure is None, "failure": failure, "steps": steps_done,
                   "time_ps": steps_done * args.timestep_fs / 1000.0, "max_bond_deviation_A": worst,
                   "wall_s": wall, "steps_per_s": steps_done / wall if wall > 0 else None})
    if args.ensemble == "nve" and len(times) > 2:
        e = np.asarray(etot) / len(atoms) * 1000.0  # meV/atom
        record["drift_meV_per_atom_per_ps"] = float(np.polyfit(times, e, 1)[0])
        record["etot_std_meV_per_atom"] = float(np.std(e))
    return record


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--calculator", required=True, choices=["equiformer", "mace", "nequip"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--frame", required=True, help="a structure file; its first frame is the start")
    parser.add_argument("--ensemble", choices=["nvt", "nve"], default="nvt")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=4000)
    parser.add_argument("--temperature", type=float, default=500.0)
    parser.add_argument("--timestep-fs", type=float, default=0.5)
    parser.add_argument("--friction-per-fs", type=float, default=0.01)
    parser.add_argument("--max-stretch", type=float, default=0.5)
    parser.add_argument("--log-interval", type=int, default=10)
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "1")))
    args = parser.parse_args(argv)
    record = run(args)
    print(json.dumps(record), flush=True)
    return record


if __name__ == "__main__":
    main()
