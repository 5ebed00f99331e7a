"""Generate the aspirin GFN2-xTB molecular-dynamics set of the peer benchmark (``benchmarks/bench_peers.py``).

One aspirin molecule (C9H8O4, 21 atoms), Langevin MD at 500 K with 0.5 fs steps, as the rMD17
aspirin set was sampled, labelled with GFN2-xTB through tblite. The start is an RDKit ETKDG/MMFF
embedding of the SMILES ``CC(=O)OC1=CC=CC=C1C(=O)O`` (coordinates below, so RDKit is not needed),
relaxed with GFN2-xTB (BFGS); then ``--equil-steps`` steps of equilibration and a labelled frame
every ``--interval`` steps. Labels under the standard ASE keys ``energy`` (eV) and ``forces``
(eV/Å). The card is ``data_cards/aspirin_gfn2_md.md``.

The file is not part of the package (it is benchmark data, 2-3 MB); it is committed at
``benchmarks/data/aspirin_gfn2_md.extxyz.gz`` so that every benchmark run sees the same frames.
MD is chaotic: another machine or thread count gives another, equally valid, trajectory.

Run from the repository root (about 10 minutes on one core)::

    python scripts/generate_aspirin_data.py
    python scripts/generate_aspirin_data.py --frames 20 --interval 2 --equil-steps 10 --out /tmp/a.extxyz.gz
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before tblite loads its OpenMP runtime

import numpy as np  # noqa: E402
from ase import Atoms  # noqa: E402
from ase.optimize import BFGS  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "benchmarks" / "data" / "aspirin_gfn2_md.extxyz.gz"

# RDKit 2026.09.1: AddHs(MolFromSmiles("CC(=O)OC1=CC=CC=C1C(=O)O")), EmbedMolecule(randomSeed=7),
# MMFFOptimizeMolecule. Atom order: acetyl C, C, O; ester O; ring C1..C6; carboxyl C, O, O; then H.
ASPIRIN_START = [
    ("C", (3.4038, 0.5543, 0.0552)), ("C", (2.0439, 0.1391, 0.5312)), ("O", (1.6894, 0.1441, 1.7031)),
    ("O", (1.2884, -0.2659, -0.5636)), ("C", (-0.0284, -0.5847, -0.2190)), ("C", (-0.3282, -1.9424, -0.0674)),
    ("C", (-1.6290, -2.3304, 0.2478)), ("C", (-2.6259, -1.3671, 0.3983)), ("C", (-2.3267, -0.0114, 0.2273)),
    ("C", (-1.0220, 0.3968, -0.0914)), ("C", (-0.7032, 1.8334, -0.3031)), ("O", (0.3609, 2.3052, -0.6590)),
    ("O", (-1.7563, 2.6373, -0.0592)), ("H", (3.9239, -0.3054, -0.3741)), ("H", (3.9844, 0.9300, 0.9025)),
    ("H", (3.3109, 1.3562, -0.6817)), ("H", (0.4490, -2.6922, -0.1857)), ("H", (-1.8659, -3.3836, 0.3782)),
    ("H", (-3.6405, -1.6701, 0.6470)), ("H", (-3.1244, 0.7190, 0.3429)), ("H", (-1.4037, 3.5378, -0.2188)),
]


def _default_data_module():
    """The MD, output and summary helpers of ``generate_default_data.py`` (one implementation)."""
    spec = importlib.util.spec_from_file_location("generate_default_data", ROOT / "scripts" / "generate_default_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def aspirin_start() -> Atoms:
    symbols, positions = zip(*ASPIRIN_START)
    return Atoms(symbols=list(symbols), positions=np.array(positions))


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .extxyz.gz")
    parser.add_argument("--seed", type=int, default=20261201, help="MD noise and initial velocities")
    parser.add_argument("--frames", type=int, default=3000, help="stored frames")
    parser.add_argument("--interval", type=int, default=10, help="MD steps between stored frames")
    parser.add_argument("--equil-steps", type=int, default=2000, help="0.5 fs steps before the first frame")
    parser.add_argument("--relax-steps", type=int, default=100, help="BFGS steps on the RDKit start")
    parser.add_argument("--temperature", type=float, default=500.0, help="K")
    args = parser.parse_args(argv)
    for name in ("frames", "interval"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1 (got {getattr(args, name)})")

    gdd = _default_data_module()
    t_start = time.perf_counter()
    print(f"GFN2-xTB via tblite {gdd.tblite_version()}; settings {gdd.TBLITE_SETTINGS}; "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; seed {args.seed}", flush=True)
    atoms = aspirin_start()
    atoms.calc = gdd.make_calculator()
    BFGS(atoms, logfile=None).run(fmax=0.05, steps=args.relax_steps)
    print(f"relaxed start: E = {atoms.get_potential_energy():.6f} eV, "
          f"max |F| = {np.linalg.norm(atoms.get_forces(), axis=1).max():.4f} eV/Å", flush=True)
    start = Atoms(numbers=atoms.numbers, positions=atoms.positions)
    frames = gdd.molecule_md(start, "aspirin", args.frames, args.interval, args.equil_steps, args.temperature,
                             timestep_fs=0.5, friction_per_fs=0.01, rng=np.random.default_rng(args.seed))
    gdd.write_extxyz_gz(args.out, frames)
    stats = gdd.summarize("aspirin", frames, args.out)
    stats["wall_time_s"] = time.perf_counter() - t_start
    print(f"total wall time {stats['wall_time_s']:.1f} s")
    return stats


if __name__ == "__main__":
    main(sys.argv[1:])
