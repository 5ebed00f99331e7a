"""Score a trained potential on test frames through its ASE calculator: one code path for every model.

Runs in the project's environment (``--calculator equiformer``) and in a peer's own virtual
environment (``--calculator mace``; ``nequip``), so it imports only ASE and NumPy at the top and
the calculator's package inside :func:`make_calculator`.

    python benchmarks/peers/score.py --calculator equiformer --model runs/x/model.pt \
        --frames test.xyz --energy-key REF_energy --forces-key REF_forces --out score.json

Writes a JSON with energy MAE/RMSE (meV per structure and meV/atom), force MAE/RMSE (meV/Å over
all components), the number of frames and the evaluation time per frame.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
from ase.io import read


def make_calculator(kind: str, model: str, dtype: str):
    """The ASE calculator of a trained model of package ``kind``."""
    if kind == "equiformer":
        import torch

        from equiformer_lite import EquiformerCalculator

        return EquiformerCalculator(model, dtype=getattr(torch, dtype))
    if kind == "mace":
        from mace.calculators import MACECalculator

        return MACECalculator(model_paths=model, device="cpu", default_dtype=dtype)
    if kind == "nequip":
        from nequip.ase import NequIPCalculator

        return NequIPCalculator.from_compiled_model(model, device="cpu")
    raise ValueError(f"unknown calculator kind {kind!r}: choose equiformer, mace or nequip")


def labels(atoms, energy_key: str, forces_key: str) -> tuple[float, np.ndarray]:
    """Reference energy (eV) and forces (eV/Å) of a frame, from ``info``/``arrays``."""
    if energy_key not in atoms.info or forces_key not in atoms.arrays:
        raise ValueError(f"frame lacks info[{energy_key!r}] or arrays[{forces_key!r}]: "
                         f"info has {sorted(atoms.info)}, arrays has {sorted(atoms.arrays)}")
    return float(atoms.info[energy_key]), np.asarray(atoms.arrays[forces_key], dtype=float)


def score(calc, frames, energy_key: str, forces_key: str) -> dict:
    """Errors of ``calc`` over ``frames``: MAE and RMSE of energies and force components."""
    de, de_atom, df = [], [], []
    start = time.perf_counter()
    for atoms in frames:
        e_ref, f_ref = labels(atoms, energy_key, forces_key)
        probe = atoms.copy()
        probe.calc = calc
        e = probe.get_potential_energy()
        f = probe.get_forces()
        if not (np.isfinite(e) and np.isfinite(f).all()):
            raise ValueError(f"non-finite prediction on frame {len(de)}")
        de.append(e - e_ref)
        de_atom.append((e - e_ref) / len(atoms))
        df.append((f - f_ref).ravel())
    elapsed = time.perf_counter() - start
    de, de_atom, df = np.array(de), np.array(de_atom), np.concatenate(df)
    return {
        "num_frames": len(frames),
        "energy_mae_meV": 1e3 * float(np.abs(de).mean()),
        "energy_rmse_meV": 1e3 * float(np.sqrt((de**2).mean())),
        "energy_mae_meV_per_atom": 1e3 * float(np.abs(de_atom).mean()),
        "forces_mae_meV_per_A": 1e3 * float(np.abs(df).mean()),
        "forces_rmse_meV_per_A": 1e3 * float(np.sqrt((df**2).mean())),
        "eval_s_per_frame": elapsed / max(len(frames), 1),
    }


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calculator", required=True, choices=["equiformer", "mace", "nequip"])
    parser.add_argument("--model", required=True)
    parser.add_argument("--frames", required=True, help="extended XYZ with reference labels")
    parser.add_argument("--energy-key", default="REF_energy")
    parser.add_argument("--forces-key", default="REF_forces")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"],
                        help="evaluation precision (float64: the errors are the model's, not rounding)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    frames = read(args.frames, index=":")
    result = score(make_calculator(args.calculator, args.model, args.dtype), frames, args.energy_key, args.forces_key)
    result.update(calculator=args.calculator, model=str(args.model), frames=str(args.frames), dtype=args.dtype,
                  threads=os.environ.get("OMP_NUM_THREADS"))
    tmp = args.out.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=2))
    os.replace(tmp, args.out)  # no half-written score on failure
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
