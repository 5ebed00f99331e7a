"""MACE's MD speed, run with MACE's own Python (its virtual environment): prints one JSON line.

    python mace_md.py --dtype float64 --threads 2 --steps 100 --frame aspirin.extxyz

The model has the peer benchmark's MACE settings (64 channels, L = 1, correlation 3, r_max 5 Å,
the rest run_train's defaults for ``--model MACE``: 2 interactions, max_ell 3, 8 Bessel functions,
cutoff polynomial 5, radial MLP [64, 64, 64], MLP readout 16x0e), with untrained weights: the
cost of a step does not depend on the weights. Through ``MACECalculator``, as a user runs it.
"""

from __future__ import annotations

import argparse
import json
import time


def build_mace(dtype: str):
    import numpy as np
    import torch
    from e3nn import o3
    from mace import modules

    torch.set_default_dtype(getattr(torch, dtype))
    torch.manual_seed(0)
    return modules.ScaleShiftMACE(
        r_max=5.0, num_bessel=8, num_polynomial_cutoff=5, max_ell=3,
        interaction_cls=modules.interaction_classes["RealAgnosticResidualInteractionBlock"],
        interaction_cls_first=modules.interaction_classes["RealAgnosticInteractionBlock"],
        num_interactions=2, num_elements=3, hidden_irreps=o3.Irreps("64x0e + 64x1o"),
        MLP_irreps=o3.Irreps("16x0e"), atomic_energies=np.zeros(3), avg_num_neighbors=15.0,
        atomic_numbers=[1, 6, 8], correlation=3, gate=torch.nn.functional.silu,
        radial_MLP=[64, 64, 64], atomic_inter_scale=1.0, atomic_inter_shift=0.0,
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dtype", default="float64")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--frame", required=True)
    parser.add_argument("--timestep-fs", type=float, default=0.05)
    args = parser.parse_args()

    import torch
    from ase import units
    from ase.io import read
    from ase.md.verlet import VelocityVerlet
    from mace.calculators import MACECalculator

    torch.set_num_threads(args.threads)
    model = build_mace(args.dtype)
    atoms = read(args.frame, index=0)
    atoms.calc = MACECalculator(models=model, device="cpu", default_dtype=args.dtype)
    dyn = VelocityVerlet(atoms, timestep=args.timestep_fs * units.fs)
    dyn.run(args.warmup)
    start = time.perf_counter()
    dyn.run(args.steps)
    wall = time.perf_counter() - start
    print(json.dumps({"steps_per_s": args.steps / wall, "steps": args.steps, "wall_s": wall,
                      "parameters": sum(p.numel() for p in model.parameters())}))


if __name__ == "__main__":
    main()
