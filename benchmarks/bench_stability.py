"""MD stability of a trained model, after Fu et al. (2022), "Forces are not enough".

    python benchmarks/bench_stability.py [--model runs/default/model.pt] [--seeds 3] [--steps 2000]

NVT (Langevin, 0.01/fs) at ``--temperature`` K from frame 0 of the bundled ethanol MD, one run per
seed, 0.5 fs steps: the time to instability is the time of the first step at which a bond of the
starting structure is more than 0.5 Å longer than at the start, or a guard of ``equiformer-lite md``
stops the run (non-finite forces, atoms closer than 0.5 Å, T above 10x the target); a run that
never fails is reported as stable for its whole length. Then NVE from the same start at the same
temperature: the drift of the total energy, the slope of a straight-line fit, in meV/atom/ps.
Results: ``--out``/results.json and a Markdown table.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "runs" / "default" / "model.pt"))
    parser.add_argument("--structure", default="bundled:ethanol")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--nve-steps", type=int, default=1000)
    parser.add_argument("--temperature", type=float, default=500.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "stability")
    args = parser.parse_args()

    import torch

    from equiformer_lite.md import MDConfig, read_frame, run_md
    from equiformer_lite.train import resolve_data_paths

    torch.set_num_threads(args.threads)
    atoms = read_frame(resolve_data_paths(args.structure)[0], 0)
    work = args.out / "runs"
    rows = []
    for seed in range(args.seeds):
        config = MDConfig(ensemble="nvt", steps=args.steps, timestep_fs=0.5, temperature_K=args.temperature, seed=seed,
                          max_bond_stretch=0.5, write_interval=100, log_interval=20, progress=False,
                          output_dir=str(work / f"nvt_seed{seed}"))
        start = time.perf_counter()
        result = run_md(args.model, atoms, config, force=True)
        rows.append({"seed": seed, "status": result.status, "reason": result.reason, "steps": result.steps,
                     "time_to_instability_ps": result.time_ps if result.status == "stopped" else None,
                     "stable_ps": result.time_ps, "wall_s": time.perf_counter() - start, "ns_per_day": result.ns_per_day})
        print(f"NVT seed {seed}: {result.status} after {result.time_ps:.3f} ps ({result.reason or 'no failure'})", flush=True)
    nve = MDConfig(ensemble="nve", steps=args.nve_steps, timestep_fs=0.5, temperature_K=args.temperature, seed=0,
                   max_bond_stretch=0.5, write_interval=1000, log_interval=10, progress=False, output_dir=str(work / "nve"))
    result = run_md(args.model, atoms, nve, force=True)
    with open(work / "nve" / "log.csv") as fh:
        log = list(csv.DictReader(fh))
    t = np.array([float(r["time_ps"]) for r in log])
    etot = np.array([float(r["etot_eV"]) for r in log])
    drift = float(np.polyfit(t, etot, 1)[0]) / len(atoms) * 1000 if len(t) > 2 else float("nan")
    fluctuation = float(np.std(etot)) / len(atoms) * 1000
    print(f"NVE: {result.status} after {result.time_ps:.3f} ps; drift {drift:.3g} meV/atom/ps, "
          f"E_tot std {fluctuation:.3g} meV/atom")
    summary = {
        "command": " ".join(sys.argv), "model": args.model, "structure": args.structure, "temperature_K": args.temperature,
        "nvt": rows, "nve": {"status": result.status, "reason": result.reason, "time_ps": result.time_ps,
                             "drift_meV_per_atom_per_ps": drift, "etot_std_meV_per_atom": fluctuation},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(summary, indent=2))
    lines = ["| run | outcome | time (ps) |", "|---|---|---|"]
    lines += [f"| NVT seed {r['seed']} | {r['status']}{': ' + r['reason'] if r['reason'] else ''} | {r['stable_ps']:.3f} |" for r in rows]
    lines.append(f"| NVE | {result.status}; drift {drift:.3g} meV/atom/ps | {result.time_ps:.3f} |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
