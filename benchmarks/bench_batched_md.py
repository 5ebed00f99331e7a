"""Batched MD through TorchSim against one-by-one ASE: systems x steps per second.

    python benchmarks/bench_batched_md.py [--threads 2] [--steps 20] [--systems 1 8 32] [--models gatv2 se3]

``B`` copies of ethanol (frame 0 of the bundled GFN2-xTB set, each rattled by 0.05 Å, seeded),
velocity Verlet at 0.25 fs with untrained seeded weights (the cost of a step does not depend on
them): (a) TorchSim's ``nve`` on all ``B`` systems in one batched model call per step
(:class:`equiformer_lite.calculators.torchsim.TorchSimModel`), (b) ASE's ``VelocityVerlet`` with
``EquiformerCalculator``, system after system. Float64 and float32. One warm-up step each, then
``--steps`` timed steps. Time nothing else on the machine. Writes a JSON and a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

MODELS = {"gatv2": {"type": "gatv2", "cutoff": 5.0}, "se3": {"type": "se3", "cutoff": 5.0}}


def systems(count: int):
    from equiformer_lite.md import read_frame
    from equiformer_lite.train import resolve_data_paths

    base = read_frame(resolve_data_paths("bundled:ethanol")[0], 0)
    out = []
    for i in range(count):
        atoms = base.copy()
        atoms.rattle(0.05, seed=i)
        atoms.calc = None
        out.append(atoms)
    return out


def build(name: str, dtype: str):
    from equiformer_lite.models import build_model

    torch.manual_seed(0)
    config = dict(MODELS[name])
    return build_model(config.pop("type"), species=["H", "C", "O"], dtype=dtype, **config).eval()


def time_torchsim(model, structures, steps: int) -> float:
    import torch_sim as ts

    from equiformer_lite.calculators.torchsim import TorchSimModel

    interface = TorchSimModel(model)
    state = ts.initialize_state(structures, interface.device, interface.dtype)
    unit = ts.units.UnitSystem.metal
    init, update = ts.nve(model=interface, dt=torch.tensor(0.00025 * unit.time, dtype=interface.dtype),
                          kT=torch.tensor(300.0 * unit.temperature, dtype=interface.dtype), seed=0)
    state = update(init(state), torch.tensor(0.0))  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        state = update(state, torch.tensor(0.0))
    return time.perf_counter() - start


def time_ase(model, structures, steps: int) -> float:
    from ase import units
    from ase.md.velocitydistribution import MaxwellBoltzmannDistribution
    from ase.md.verlet import VelocityVerlet

    from equiformer_lite import EquiformerCalculator

    total = 0.0
    for i, atoms in enumerate(structures):
        atoms = atoms.copy()
        MaxwellBoltzmannDistribution(atoms, temperature_K=300, rng=np.random.default_rng(i))
        atoms.calc = EquiformerCalculator(model)
        dyn = VelocityVerlet(atoms, timestep=0.25 * units.fs)
        dyn.run(1)  # warm-up
        start = time.perf_counter()
        dyn.run(steps)
        total += time.perf_counter() - start
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--systems", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--models", nargs="+", default=["gatv2", "se3"], choices=sorted(MODELS))
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "batched_md")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for name in args.models:
        for dtype in args.dtypes:
            model = build(name, dtype)
            for count in args.systems:
                structures = systems(count)
                batched = time_torchsim(model, structures, args.steps)
                one_by_one = time_ase(model, structures, args.steps)
                row = {"model": name, "dtype": dtype, "systems": count, "steps": args.steps,
                       "torchsim_system_steps_per_s": count * args.steps / batched,
                       "ase_system_steps_per_s": count * args.steps / one_by_one}
                row["speedup"] = row["torchsim_system_steps_per_s"] / row["ase_system_steps_per_s"]
                rows.append(row)
                print(f"{name:6s} {dtype}  {count:3d} systems: TorchSim {row['torchsim_system_steps_per_s']:8.1f}, "
                      f"ASE one by one {row['ase_system_steps_per_s']:8.1f} system-steps/s ({row['speedup']:.2f}x)", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    meta = {"command": " ".join(sys.argv), "threads": args.threads, "torch": torch.__version__, "python": platform.python_version(),
            "cpu": platform.processor() or platform.machine()}
    (args.out / "results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    lines = ["| model | dtype | systems | TorchSim system-steps/s | ASE one-by-one | speed-up |", "|---|---|---|---|---|---|"]
    lines += [f"| {r['model']} | {r['dtype']} | {r['systems']} | {r['torchsim_system_steps_per_s']:.1f} | "
              f"{r['ase_system_steps_per_s']:.1f} | {r['speedup']:.2f}x |" for r in rows]
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
