"""Does a committee's force spread rank its errors, and does it stop a simulation that leaves the data?

    python benchmarks/bench_committee.py [--committee DIR] [--members 4] [--hot 1000 1500] [--md-steps 2000]

1. The committee: ``equiformer-lite train --committee N`` of the README's default job (SE3Potential
   on the bundled ethanol and water data, members differing in seed only), trained into
   ``--committee`` unless it is there already.
2. Held-out data: the default job's validation and test structures (in distribution), and
   GFN2-xTB (tblite) Langevin MD of ethanol at each ``--hot`` temperature (shifted data; the
   training data are 500 K), made with the same code as the bundled data
   (``scripts/generate_default_data.py``) and cached under ``--work``.
3. Per structure: the error of the committee mean (force MAE over components, eV/Å) and its
   uncertainty (mean over atoms of the length of the per-atom force standard deviation, eV/Å);
   the Spearman rank correlation of the two within each set and pooled over all test sets.
4. The stop: NVT (Langevin, 0.5 fs) of ethanol from the bundled frame 0 with the committee. The
   threshold ``md.max_force_std`` is calibrated on a run in the training distribution: the
   largest per-atom force spread of ``--md-steps`` steps at the training temperature (500 K,
   seed ``--seed`` + 100). Then, with seed ``--seed``: 500 K with the threshold (a false alarm
   if it stops), and ``--md-temperature`` with and without it (both with the bond-stretch guard
   of 0.5 Å, Fu et al.). Reported: where each run stopped and why, whether every step before
   the stop was finite, the committee's force error against GFN2-xTB at the stopping frame,
   and the first step at which the unguarded run's spread passed the threshold.

Results: ``--out``/results.json and results.md. Everything runs on ``--threads`` threads.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

DEFAULT_WORK = Path.home() / ".cache" / "equiformer_lite" / "bench_committee"


def train_committee(directory: Path, members: int, threads: int) -> None:
    if (directory / "committee.json").is_file():
        print(f"reusing the committee in {directory}", flush=True)
        return
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    subprocess.run(["equiformer-lite", "train", "--committee", str(members), "--output-dir", str(directory)],
                   check=True, env=env)


def hot_ethanol(temperature: float, frames: int, work: Path, seed: int):
    """GFN2-xTB Langevin MD of ethanol at ``temperature`` (cached extxyz)."""
    import numpy as np
    from ase.io import read, write

    path = work / f"ethanol_xtb_{temperature:.0f}K_{frames}.extxyz"
    if not path.is_file():
        import generate_default_data as gen

        md = gen.ethanol_md(frames, interval=10, equil_steps=400, temperature_K=temperature, timestep_fs=0.5,
                            friction_per_fs=0.01, rng=np.random.default_rng(seed))
        tmp = path.with_suffix(".tmp.extxyz")
        write(tmp, md, format="extxyz")
        tmp.replace(path)
    return read(path, index=":")


def held_out_default_job():
    """The default job's validation and test structures (its pooled split), as read for training."""
    from ase.io import read

    from equiformer_lite.train import RunConfig, pooled_split_indices, resolve_data_paths

    config = RunConfig()
    frames = [atoms for path in resolve_data_paths(config.data.path) for atoms in read(path, index=":")]
    indices = pooled_split_indices(len(frames), config)
    return {name: [frames[int(i)] for i in indices[name]] for name in ("val", "test")}


def per_structure(calc, frames) -> dict:
    """Committee-mean force MAE and force spread (mean and max over atoms) of every frame, eV/Å."""
    import numpy as np

    errors, spread, spread_max, energy_err = [], [], [], []
    for atoms in frames:
        reference_f = atoms.get_forces().copy()
        reference_e = atoms.get_potential_energy()
        probe = atoms.copy()
        probe.calc = calc
        forces = probe.get_forces()
        std = np.linalg.norm(probe.calc.results["forces_std"], axis=1)  # [N]
        errors.append(float(np.abs(forces - reference_f).mean()))
        spread.append(float(std.mean()))
        spread_max.append(float(std.max()))
        energy_err.append(float(abs(probe.get_potential_energy() - reference_e) / len(atoms)))
    return {"force_mae": errors, "force_std_mean": spread, "force_std_max": spread_max, "energy_abs_err_per_atom": energy_err}


def spearman(x, y) -> float:
    from scipy.stats import spearmanr

    return float(spearmanr(x, y).statistic)


def summarize(name: str, values: dict) -> dict:
    import numpy as np

    return {"set": name, "structures": len(values["force_mae"]),
            "force_mae_meV_A": 1e3 * float(np.mean(values["force_mae"])),
            "force_std_mean_meV_A": 1e3 * float(np.mean(values["force_std_mean"])),
            "largest_force_std_meV_A": 1e3 * float(np.max(values["force_std_max"])),
            "spearman_std_vs_error": spearman(values["force_std_mean"], values["force_mae"])}


def md_run(members, start, temperature: float, steps: int, threshold, out: Path, seed: int):
    from equiformer_lite.md import MDConfig, run_md

    config = MDConfig(ensemble="nvt", steps=steps, timestep_fs=0.5, temperature_K=temperature, friction_per_fs=0.01,
                      seed=seed, write_interval=10, log_interval=1, max_force_std=threshold, max_bond_stretch=0.5,
                      output_dir=str(out), progress=False)
    result = run_md(members, start, config, force=True)
    import csv

    with open(out / "log.csv") as fh:
        rows = list(csv.DictReader(fh))
    finite = all(all(_finite(v) for v in row.values()) for row in rows)
    return result, rows, finite


def _finite(value: str) -> bool:
    try:
        return abs(float(value)) < float("inf")
    except ValueError:
        return True  # a non-numeric column


def _or_dash(value) -> str:
    return "–" if value is None else str(value)


def xtb_error_at(path: Path, calc) -> dict:
    """Committee force error against GFN2-xTB at the frame in ``path`` (a stopping frame)."""
    import numpy as np
    from ase.io import read

    import generate_default_data as gen

    atoms = read(path, index=0)
    atoms.calc = gen.make_calculator()
    reference = atoms.get_forces().copy()
    probe = atoms.copy()
    probe.calc = calc
    forces = probe.get_forces()
    return {"force_mae_meV_A": 1e3 * float(np.abs(forces - reference).mean()),
            "largest_force_std_meV_A": 1e3 * float(probe.calc.results["forces_std_max"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--committee", type=Path, default=DEFAULT_WORK / "committee")
    parser.add_argument("--members", type=int, default=4)
    parser.add_argument("--hot", type=float, nargs="*", default=[1000.0, 1500.0], help="shifted-data MD temperatures, K")
    parser.add_argument("--hot-frames", type=int, default=100)
    parser.add_argument("--md-temperature", type=float, default=1500.0)
    parser.add_argument("--md-steps", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "committee")
    args = parser.parse_args()

    import torch
    from ase.io import read

    from equiformer_lite import EquiformerCalculator
    from equiformer_lite.train import committee_members, resolve_data_paths

    torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    train_committee(args.committee, args.members, args.threads)
    members = committee_members(args.committee)
    calc = EquiformerCalculator([str(m) for m in members], dtype="float64")

    held_out = held_out_default_job()
    sets = {}
    for split in ("val", "test"):
        kind = "validation" if split == "val" else "test"
        sets[f"{kind}: ethanol (default job, in distribution)"] = [a for a in held_out[split] if not a.pbc.any()]
        sets[f"{kind}: water box (default job, in distribution)"] = [a for a in held_out[split] if a.pbc.any()]
    for temperature in args.hot:
        sets[f"ethanol GFN2-xTB MD at {temperature:.0f} K (shifted)"] = hot_ethanol(temperature, args.hot_frames, args.work, args.seed)
    values = {}
    for name, frames in sets.items():
        print(f"scoring {name}: {len(frames)} structures", flush=True)
        values[name] = per_structure(calc, frames)
    rows = [summarize(name, v) for name, v in values.items()]
    tests = [name for name in values if not name.startswith("validation")]
    pooled = {key: [x for name in tests for x in values[name][key]] for key in values[tests[0]]}
    pooled_row = summarize("all test sets pooled", pooled)

    start = read(resolve_data_paths("bundled:ethanol")[0], index=0)
    start = start.__class__(numbers=start.numbers, positions=start.positions)
    paths = [str(m) for m in members]
    print("calibration: NVT at 500 K without a threshold", flush=True)
    _, calibration_log, _ = md_run(paths, start, 500.0, args.md_steps, None, args.work / "md_calibration", args.seed + 100)
    threshold = max(float(r["forces_std_max_eV_A"]) for r in calibration_log)
    runs = {}
    for label, temperature, limit in (("500 K with the threshold", 500.0, threshold),
                                      (f"{args.md_temperature:.0f} K with the threshold", args.md_temperature, threshold),
                                      (f"{args.md_temperature:.0f} K without it", args.md_temperature, None)):
        out = args.work / f"md_{temperature:.0f}K_{'threshold' if limit else 'free'}"
        print(f"NVT {label}", flush=True)
        result, log, finite = md_run(paths, start, temperature, args.md_steps, limit, out, args.seed)
        spread = [float(r["forces_std_max_eV_A"]) for r in log]
        run = {"status": result.status, "reason": result.reason, "steps": result.steps, "time_ps": result.time_ps,
               "logged_rows_all_finite": finite, "largest_force_std_logged_meV_A": 1e3 * max(spread),
               "first_step_above_threshold": next((int(r["step"]) for r, v in zip(log, spread) if v > threshold), None)}
        if (out / "stopped_at.extxyz").is_file():
            run["at_stop_vs_xtb"] = xtb_error_at(out / "stopped_at.extxyz", calc)
        runs[label] = run
        print(f"  {run}", flush=True)

    summary = {"command": " ".join(["python"] + sys.argv), "members": [str(m) for m in members],
               "sets": rows, "pooled": pooled_row, "threshold_eV_A": threshold, "md_temperature_K": args.md_temperature,
               "md_steps": args.md_steps, "md": runs, "per_structure": values}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = [f"`{summary['command']}`", "",
             "| held-out set | structures | force MAE of the mean (meV/Å) | mean force std (meV/Å) | largest per-atom std (meV/Å) | Spearman(std, error) |",
             "|---|---|---|---|---|---|"]
    for row in rows + [pooled_row]:
        lines.append(f"| {row['set']} | {row['structures']} | {row['force_mae_meV_A']:.1f} | {row['force_std_mean_meV_A']:.1f} | "
                     f"{row['largest_force_std_meV_A']:.1f} | {row['spearman_std_vs_error']:.2f} |")
    lines += ["", f"NVT at {args.md_temperature:.0f} K, up to {args.md_steps} steps of 0.5 fs; threshold md.max_force_std = "
              f"{1e3 * threshold:.1f} meV/Å (the largest per-atom spread of {args.md_steps} steps at 500 K, seed {args.seed + 100}).", "",
              "| run | status | steps | reason | every step finite | largest spread (meV/Å) | first step above the threshold | at the stop: force MAE vs GFN2-xTB (meV/Å) |",
              "|---|---|---|---|---|---|---|---|"]
    for label, run in runs.items():
        at = run.get("at_stop_vs_xtb", {})
        lines.append(f"| {label} | {run['status']} | {run['steps']} | {run['reason'] or ''} | {run['logged_rows_all_finite']} | "
                     f"{run['largest_force_std_logged_meV_A']:.0f} | {_or_dash(run['first_step_above_threshold'])} | "
                     f"{at.get('force_mae_meV_A', float('nan')):.0f} |")
    (args.out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
