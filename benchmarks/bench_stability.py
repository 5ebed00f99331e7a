"""MD stability of the README job's model next to MACE trained on the same data, after Fu et al.
(2022), "Forces are not enough".

    python benchmarks/bench_stability.py [--system ethanol|aspirin] [--model runs/default/model.pt] [--mace]
                                         [--seeds 3] [--steps 2000]

``--system ethanol`` (the default): ours is the model ``equiformer-lite train`` writes (the
README's job: SE3Potential on the bundled ethanol and water data). ``--mace``: MACE
(``benchmarks/peers/mace_peer.py``: its own cached virtual environment and documented settings)
trained on the very same training and validation structures (``pooled_split_indices`` of the
default config) for the same number of epochs; its energy and force labels only (its weighted
loss ignores stress).

``--system aspirin``: the peer benchmark's aspirin GFN2-xTB set and its 950/50/1000 split
(``benchmarks/peers/data.py``); ours is the README job's recipe (the package's built-in model and
training defaults, its 20 epochs) trained here on that split through ``equiformer-lite train``,
and MACE is trained on the same files for the same epochs, the two side by side (one process
each on ``--train-threads`` threads). Trained models are kept under ``--work`` and reused
(``--retrain`` trains ours again).

Every model runs the same protocol, ``benchmarks/peers/stability_run.py`` (ASE only): NVT
(Langevin, 0.01/fs, 0.5 fs steps) at ``--temperature`` from frame 0 of the system's MD set,
one run per seed; unstable at the first step with a bond of the start more than 0.5 Å off its
starting length, or a non-finite energy or force. Then NVE from the same start: the total-energy
drift (slope of a straight-line fit) in meV/atom/ps. Float64 evaluation for every model; each run
one process with ``--threads`` threads, one after the other (``--side-by-side``: one model's runs
beside the other's). ``--nve-seeds`` and ``--nve-timesteps`` repeat the NVE run over seeds and
timesteps (the same simulated time at each), which tells an integration error (it shrinks as
dt^2) from the scatter of the slope over seeds. Results: ``--out``/results.json and
results.md; training runs and split files under ``--work`` (not committed).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(HERE)]

from peers import data, mace_peer, ours  # noqa: E402

PROTOCOL = HERE / "peers" / "stability_run.py"
DEFAULT_WORK = Path.home() / ".cache" / "equiformer_lite" / "bench_stability"
ENERGY_KEY, FORCES_KEY = "REF_energy", "REF_forces"


def default_job_split(work: Path) -> tuple[dict, int]:
    """The default job's training/validation/test structures as extended XYZ files with labels under
    keys no ASE calculator claims (MACE reads those); and the job's number of epochs."""
    import numpy as np
    from ase import Atoms
    from ase.io import read, write

    from equiformer_lite.train import RunConfig, pooled_split_indices, resolve_data_paths

    config = RunConfig()  # the built-in defaults: what `equiformer-lite train` runs
    frames = [atoms for path in resolve_data_paths(config.data.path) for atoms in read(path, index=":")]
    indices = pooled_split_indices(len(frames), config)
    out = work / "split"
    split = {name: out / f"{name}.xyz" for name in indices}
    split.update(energy_key=ENERGY_KEY, forces_key=FORCES_KEY, sizes={k: len(v) for k, v in indices.items()})
    if not all(split[name].exists() for name in indices):
        out.mkdir(parents=True, exist_ok=True)
        for name, chosen in indices.items():
            clean = []
            for index in chosen:
                atoms = frames[int(index)]
                copy = Atoms(numbers=atoms.numbers, positions=atoms.positions, cell=atoms.cell, pbc=atoms.pbc)
                copy.info[ENERGY_KEY] = float(atoms.get_potential_energy())
                copy.arrays[FORCES_KEY] = np.asarray(atoms.get_forces())
                copy.info["frame"] = int(index)
                clean.append(copy)
            tmp = split[name].with_suffix(".tmp.xyz")
            write(tmp, clean, format="extxyz")
            tmp.replace(split[name])
    return split, config.training.epochs


def protocol(python: str, calculator: str, model: str, frame: Path, ensemble: str, seed: int, args,
             timestep_fs: float = 0.5) -> dict:
    # NVE runs cover the same time at every timestep: --nve-steps are counted in 0.5 fs steps.
    steps = args.steps if ensemble == "nvt" else round(args.nve_steps * 0.5 / timestep_fs)
    command = [python, str(PROTOCOL), "--calculator", calculator, "--model", model, "--frame", str(frame),
               "--ensemble", ensemble, "--seed", str(seed), "--temperature", str(args.temperature),
               "--steps", str(steps), "--timestep-fs", str(timestep_fs), "--threads", str(args.threads)]
    # Ours imports this checkout's package, whatever is installed; MACE runs in its own venv.
    env = ours.checkout_env(args.threads) if calculator == "equiformer" else dict(
        os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{calculator} {ensemble} seed {seed} failed:\n{done.stderr[-3000:]}")
    record = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"  {calculator} {ensemble} seed {seed} dt {timestep_fs} fs: {'stable' if record['stable'] else 'UNSTABLE'} over "
          f"{record['time_ps']:.3f} ps ({record['failure'] or 'no failure'}), largest bond deviation "
          f"{record['max_bond_deviation_A']:.3f} A"
          + (f", drift {record['drift_meV_per_atom_per_ps']:.3g} meV/atom/ps" if ensemble == "nve" else "")
          + f", {record['steps_per_s']:.1f} steps/s", flush=True)
    return record


def table(results: dict) -> list[str]:
    """The stability table (NVT per seed; NVE at 0.5 fs per seed) and, when NVE ran at several
    timesteps, the timestep table: a conservative model integrated by velocity Verlet has an
    energy error that shrinks as dt^2, so a drift that does not shrink with dt is no integration error."""
    lines = ["| model | NVT runs stable | time stable per seed (ps; 'unstable': time to instability) | largest bond deviation (Å) | NVE drift per seed (meV/atom/ps) | NVE E_tot std per seed (meV/atom) |",
             "|---|---|---|---|---|---|"]
    steps = sorted({r.get("timestep_fs", 0.5) for runs in results.values() for r in runs if r["ensemble"] == "nve"})
    for name, runs in results.items():
        nvt = [r for r in runs if r["ensemble"] == "nvt"]
        nve = [r for r in runs if r["ensemble"] == "nve" and r.get("timestep_fs", 0.5) == 0.5]
        times = ", ".join(f"{r['time_ps']:.3f}" + ("" if r["stable"] else " (unstable)") for r in nvt)
        drift = "; ".join(f"{r.get('drift_meV_per_atom_per_ps', float('nan')):.3g}" + ("" if r["stable"] else " (unstable)") for r in nve)
        std = "; ".join(f"{r.get('etot_std_meV_per_atom', float('nan')):.3g}" for r in nve)
        worst = max(r["max_bond_deviation_A"] for r in nvt)
        lines.append(f"| {name} | {sum(r['stable'] for r in nvt)}/{len(nvt)} | {times} | {worst:.3f} | {drift} | {std} |")
    if len(steps) > 1:
        lines += ["", "| model | NVE timestep (fs) | seeds | mean drift ± std over seeds (meV/atom/ps) | mean abs drift | mean E_tot std (meV/atom) |",
                  "|---|---|---|---|---|---|"]
        for name, runs in results.items():
            for dt in steps:
                chosen = [r for r in runs if r["ensemble"] == "nve" and r.get("timestep_fs", 0.5) == dt and r["stable"]]
                drifts = [r["drift_meV_per_atom_per_ps"] for r in chosen]
                if not drifts:
                    continue
                mean = sum(drifts) / len(drifts)
                spread = (sum((d - mean) ** 2 for d in drifts) / max(len(drifts) - 1, 1)) ** 0.5
                absolute = sum(abs(d) for d in drifts) / len(drifts)
                fluct = sum(r["etot_std_meV_per_atom"] for r in chosen) / len(chosen)
                lines.append(f"| {name} | {dt:g} | {len(drifts)} | {mean:.3g} ± {spread:.2g} | {absolute:.3g} | {fluct:.3g} |")
    return lines


def side_by_side(jobs: dict) -> dict:
    """Run the callables at the same time (each drives subprocesses: a training on
    ``--train-threads`` threads or a model's MD runs on ``--threads``); their results by name."""
    if not jobs:
        return {}
    with ThreadPoolExecutor(max_workers=len(jobs)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: future.result() for name, future in futures.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--system", choices=("ethanol", "aspirin"), default="ethanol")
    parser.add_argument("--model", default=None,
                        help="our trained model (ethanol; default runs/default/model.pt from the README job)")
    parser.add_argument("--mace", action="store_true", help="also train MACE on the same data and run it")
    parser.add_argument("--retrain", action="store_true", help="aspirin: train ours again even if a model is kept")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=2000, help="NVT steps per seed (0.5 fs)")
    parser.add_argument("--nve-steps", type=int, default=1000, help="NVE length in 0.5 fs steps (the same time at every timestep)")
    parser.add_argument("--nve-seeds", type=int, default=1, help="NVE runs per timestep, seeds 0, 1, ...")
    parser.add_argument("--nve-timesteps", type=float, nargs="+", default=[0.5], help="NVE timesteps, fs")
    parser.add_argument("--side-by-side", action="store_true",
                        help="run the models' MD at the same time, one process per model (results unchanged, speeds rough)")
    parser.add_argument("--temperature", type=float, default=500.0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--train-threads", type=int, default=2)
    parser.add_argument("--work", type=Path, default=DEFAULT_WORK)
    parser.add_argument("--out", type=Path, default=None,
                        help="results folder (default benchmarks/results/stability, or stability/aspirin)")
    args = parser.parse_args()

    from ase.io import read, write

    from equiformer_lite.train import RunConfig, resolve_data_paths

    args.work.mkdir(parents=True, exist_ok=True)
    results_dir = ROOT / "benchmarks" / "results" / "stability"
    summary: dict = {"command": " ".join(["python"] + sys.argv), "system": args.system, "temperature_K": args.temperature,
                     "nvt_steps": args.steps, "nve_steps": args.nve_steps, "timestep_fs": 0.5, "threads": args.threads}
    training: dict = {}  # name -> a callable that trains that model
    if args.system == "ethanol":
        args.out = args.out or results_dir
        model_path = Path(args.model or ROOT / "runs" / "default" / "model.pt")
        if not model_path.is_file():
            raise SystemExit(f"no model at {model_path}: run `equiformer-lite train` first (the README's main job)")
        source = resolve_data_paths("bundled:ethanol")[0]
        models = {"ours (SE3Potential, README job)": (sys.executable, "equiformer", str(model_path.resolve()))}
        split, epochs, mace_dir = None, None, None
    else:
        args.out = args.out or results_dir / "aspirin"
        if args.model is not None:
            raise SystemExit("--model is for ethanol; on aspirin ours is trained here with the README job's recipe")
        source = data.ASPIRIN
        split = data.split_files(source, args.work / "aspirin_splits")
        epochs = RunConfig().training.epochs
        ours_dir = args.work / f"aspirin_ours_e{epochs}"
        model_path = ours_dir / "run" / "model.pt"
        if args.retrain or not model_path.is_file():
            print(f"training ours (the README job's recipe) on aspirin {split['sizes']} for {epochs} epochs", flush=True)
            config = ours.default_job_config(split, epochs, args.train_threads)
            training["ours"] = lambda: ours.train_config(config, ours_dir, args.train_threads)
        summary["ours_model"] = str(model_path)
        models = {"ours (SE3Potential, README job's recipe)": (sys.executable, "equiformer", str(model_path.resolve()))}
        mace_dir = args.work / f"aspirin_mace_e{epochs}"
    frame = args.work / f"{args.system}_frame0.extxyz"
    start = read(source, index=0)
    write(frame, start.__class__(numbers=start.numbers, positions=start.positions), format="extxyz")

    if args.mace:
        if split is None:
            split, epochs = default_job_split(args.work)
            mace_dir = args.work / f"mace_e{epochs}"
        model = mace_dir / f"mace_e{epochs}_stagetwo.model"
        trained_mace = None
        if model.exists():
            trained_mace = {"model": str(model), "python": str(mace_peer.ensure_venv()), "reused": True}
        else:
            print(f"training MACE on {split['sizes']} structures for {epochs} epochs", flush=True)
            mace_peer.ensure_venv()  # before the trainings start side by side
            training["mace"] = lambda: mace_peer.train(split, epochs, mace_dir, threads=args.train_threads)
    trained = side_by_side(training)
    if "ours" in trained:
        summary["ours"] = {"train_time_s": trained["ours"]["train_time_s"], "settings": trained["ours"]["settings"]}
    if args.mace:
        trained_mace = trained.get("mace", trained_mace)
        summary["mace"] = {"model": trained_mace["model"], "epochs": epochs, "settings": mace_peer.settings(epochs),
                           "version": mace_peer.MACE_VERSION, "split_sizes": split["sizes"],
                           "train_wall_s": trained_mace.get("process_wall_s")}
        models[f"MACE {mace_peer.MACE_VERSION} (same data, {epochs} epochs)"] = (
            trained_mace["python"], "mace", trained_mace["model"])

    def runs_of(name: str) -> list[dict]:
        python, calculator, model = models[name]
        print(name, flush=True)
        runs = [protocol(python, calculator, model, frame, "nvt", seed, args) for seed in range(args.seeds)]
        runs += [protocol(python, calculator, model, frame, "nve", seed, args, timestep_fs=dt)
                 for dt in args.nve_timesteps for seed in range(args.nve_seeds)]
        return runs

    if args.side_by_side:  # one process per model at a time, as the trainings
        results = side_by_side({name: (lambda name=name: runs_of(name)) for name in models})
    else:
        results = {name: runs_of(name) for name in models}
    summary["results"] = results
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = table(results)
    (args.out / "results.md").write_text(f"`{summary['command']}`\n\n" + "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
