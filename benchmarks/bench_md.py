"""Molecular-dynamics speed against MACE: velocity Verlet on aspirin through each ASE calculator.

    python benchmarks/bench_md.py [--threads 2] [--steps 100] [--runs se3 se3:export mace ...]

Aspirin (21 atoms, frame 0 of the bundled GFN2-xTB set), ``--warmup`` steps first, then steps/s
over ``--steps`` steps; float64 and float32. The time step is 0.05 fs: the weights are untrained
(seeded; the cost of a step does not depend on them), and at 0.5 fs the untrained float32 SE3
model's forces pushed two atoms to 0.08 Å within the run (the calculator refuses overlapping atoms). Every (model, dtype) runs alone in a
fresh process, one after another, on ``--threads`` threads (time nothing else on the machine).

* ``mace``: MACE 0.3.16 with the peer benchmark's settings, in MACE's own virtual environment
  (``benchmarks/peers/mace_md.py``), through ``MACECalculator``;
* ``se3``: ``SE3Potential`` at its defaults (16 channels, lmax 2, 3 layers); ``se3_recipe``: the
  model of ``configs/se3_molecule.yaml`` (32 channels; 64 until 2026-12-08, the model of the MD
  tables before that date); ``se3_node``, ``se3_recipe_node``: the same
  with ``message_mixing="node"``; ``gatv2``: ``configs/gatv2_molecule.yaml``; ``gatv2_thesis``:
  the same with ``angular_lmax=0`` (distances only), ``gatv2_k16`` and ``gatv2_k48`` without the
  bispectrum (``angular_correlation=2``) over 16 and 48 density channels (``gatv2_k48`` is the
  recipe of 2026-12-07);
  through ``EquiformerCalculator``;
* ``NAME:compile``: the same model through ``EquiformerCalculator(model, compile=True)``
  (``torch.compile``, one graph with forces; the compilation is in the first step, reported apart);
* ``NAME:export``: the same model exported (``equiformer_lite.export``: torch.export +
  AOTInductor, a ``.pt2`` file) and run by ``EquiformerCalculator`` from that file. Exports are
  cached under ``--work`` by model, dtype and package hash (compiling takes minutes).

``--rounds N`` measures everything N times, the runs in turn: the speed of this machine drifts
between minutes (MACE alone gave 16.4 to 26.1 float32 steps/s within one hour on 2026-12-07), so
each ratio to MACE is taken within a round and the table gives the median and the range.

Results: a JSON and
a Markdown table in ``--out`` with the ratio of every run to MACE's steps/s of the same dtype.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

from peers import mace_peer, ours  # noqa: E402
from peers.data import ASPIRIN  # noqa: E402

# A model section, or a config file's model section with some settings replaced.
MODELS = {
    "se3": {"type": "se3"},
    "se3_node": {"type": "se3", "message_mixing": "node"},
    "se3_recipe": ("configs/se3_molecule.yaml", {}),
    "se3_recipe_node": ("configs/se3_molecule.yaml", {"message_mixing": "node"}),
    "gatv2": ("configs/gatv2_molecule.yaml", {}),
    "gatv2_thesis": ("configs/gatv2_molecule.yaml", {"angular_lmax": 0}),  # distances only, as before 2026-12-07
    # the power spectrum alone, over 16 density channels and over all 48 (the recipe of 2026-12-07)
    "gatv2_k16": ("configs/gatv2_molecule.yaml", {"angular_channels": 16, "angular_correlation": 2}),
    "gatv2_k48": ("configs/gatv2_molecule.yaml", {"angular_channels": None, "angular_correlation": 2}),
}
DEFAULT_RUNS = ["mace", "se3", "se3:compile", "se3:export", "se3_recipe", "se3_recipe:export",
                "gatv2", "gatv2:compile", "gatv2:export"]


def model_section(name: str) -> dict:
    spec = MODELS[name]
    if isinstance(spec, dict):
        return dict(spec)
    path, changes = spec
    return {**yaml.safe_load((ROOT / path).read_text())["model"], **changes}


def build(name: str, dtype: str):
    import torch

    from equiformer_lite import build_model

    section = model_section(name)
    torch.manual_seed(0)
    return build_model(section.pop("type"), species=["C", "H", "O"], dtype=dtype, **section).eval()


def exported_path(name: str, dtype: str, work: Path) -> Path:
    """The cached export of a model (key: its config, dtype and the package's source hash)."""
    key = hashlib.sha256(json.dumps([model_section(name), dtype, ours.package_sha256()], sort_keys=True).encode()).hexdigest()[:16]
    return work / f"{name}_{dtype}_{key}.pt2"


TIMESTEP_FS = 0.05


def child(name: str, dtype: str, threads: int, steps: int, warmup: int, work: Path) -> dict:
    """One measurement in this (fresh) process."""
    import torch
    from ase import units
    from ase.io import read
    from ase.md.verlet import VelocityVerlet

    from equiformer_lite import EquiformerCalculator
    from equiformer_lite.export import export_model

    torch.set_num_threads(threads)
    base, _, mode = name.partition(":")
    model = build(base, dtype)
    info = {"parameters": sum(p.numel() for p in model.parameters())}
    if mode == "export":
        path = exported_path(base, dtype, work)
        if not path.exists():
            start = time.perf_counter()
            path.parent.mkdir(parents=True, exist_ok=True)
            # The artefact is the same with or without its checks; the tests and `equiformer-lite
            # export` run them, the benchmark only times the result.
            export_model(model, path, [read(ASPIRIN, index=0)], check=False)
            info["export_s"] = time.perf_counter() - start
        calculator = EquiformerCalculator(str(path))
    else:
        calculator = EquiformerCalculator(model, compile=mode == "compile")
    atoms = read(ASPIRIN, index=0)
    atoms.calc = calculator
    dyn = VelocityVerlet(atoms, timestep=TIMESTEP_FS * units.fs)
    start = time.perf_counter()
    dyn.run(1)  # with :compile, the compilation
    info["first_step_s"] = time.perf_counter() - start
    dyn.run(warmup)
    start = time.perf_counter()
    dyn.run(steps)
    wall = time.perf_counter() - start
    return {"steps_per_s": steps / wall, "steps": steps, "wall_s": wall, **info}


def run_one(name: str, dtype: str, args) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
    if name == "mace":
        python = mace_peer.ensure_venv()
        command = [str(python), str(ROOT / "benchmarks" / "peers" / "mace_md.py"), "--dtype", dtype,
                   "--threads", str(args.threads), "--steps", str(args.steps), "--warmup", str(args.warmup),
                   "--frame", str(ASPIRIN), "--timestep-fs", str(TIMESTEP_FS)]
    else:
        env = ours.checkout_env(args.threads)
        command = [sys.executable, __file__, "--child", name, dtype, "--threads", str(args.threads),
                   "--steps", str(args.steps), "--warmup", str(args.warmup), "--work", str(args.work)]
        base, _, mode = name.partition(":")
        if mode == "export" and not exported_path(base, dtype, args.work).exists():
            # Export in a process of its own: timed in the process that compiled it, the exported
            # model ran 23 steps/s against 31 in a fresh one (2026-12-04).
            built = subprocess.run(command[:command.index("--steps")] + ["--steps", "1", "--warmup", "0", "--work", str(args.work)],
                                   env=env, capture_output=True, text=True)
            if built.returncode:
                raise RuntimeError(f"exporting {name} {dtype} failed:\n{built.stderr[-3000:]}")
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{name} {dtype} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(results: list[dict]) -> str:
    """Per (run, dtype): the median steps/s over the rounds, and the median (min-max) over the
    rounds of its ratio to MACE's steps/s of the same round and dtype."""
    mace = {(r["round"], r["dtype"]): r["steps_per_s"] for r in results if r["run"] == "mace"}
    lines = ["| run | dtype | parameters | steps/s (median) | × MACE (median) | × MACE (min–max over rounds) |",
             "|---|---|---|---|---|---|"]
    keys = list(dict.fromkeys((r["run"], r["dtype"]) for r in results))
    for run, dtype in sorted(keys, key=lambda k: (k[1] != "float64", keys.index(k))):
        rows = [r for r in results if (r["run"], r["dtype"]) == (run, dtype)]
        ratios = [r["steps_per_s"] / mace[r["round"], dtype] for r in rows if (r["round"], dtype) in mace]
        ratio = f"{statistics.median(ratios):.2f}" if ratios else "–"
        spread = f"{min(ratios):.2f}–{max(ratios):.2f}" if ratios else "–"
        lines.append(f"| {run} | {dtype} | {rows[0]['parameters']:,} | {statistics.median(r['steps_per_s'] for r in rows):.1f} "
                     f"| {ratio} | {spread} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--runs", nargs="+", default=DEFAULT_RUNS)
    parser.add_argument("--dtypes", nargs="+", default=["float64", "float32"])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=1,
                        help="measure every (run, dtype) this many times, the runs in turn; ratios to MACE are taken within a round")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "equiformer_lite" / "bench_md")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "md")
    parser.add_argument("--child", nargs=2, metavar=("RUN", "DTYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child, args.threads, args.steps, args.warmup, args.work)))
        return
    for name in args.runs:
        base, _, mode = name.partition(":")
        if name != "mace" and (base not in MODELS or mode not in ("", "compile", "export")):
            parser.error(f"unknown run {name!r}: 'mace' or MODEL[:compile|:export] with MODEL one of {sorted(MODELS)}")
    if args.rounds < 1:
        parser.error(f"--rounds must be at least 1, got {args.rounds}")
    results = []
    for round_ in range(args.rounds):
        for dtype in args.dtypes:
            for name in args.runs:
                result = {"run": name, "dtype": dtype, "round": round_, **run_one(name, dtype, args)}
                print(f"{name:>20} {dtype} (round {round_ + 1}): {result['steps_per_s']:.1f} steps/s", flush=True)
                results.append(result)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/bench_md.py " + " ".join(sys.argv[1:])
    import torch

    payload = {"command": command.strip(), "date": time.strftime("%Y-%m-%d"), "threads": args.threads,
               "torch": torch.__version__, "mace": mace_peer.MACE_VERSION, "package_sha256": ours.package_sha256(),
               "steps": args.steps, "timestep_fs": TIMESTEP_FS, "machine": platform.processor() or platform.machine(),
               "cpus": os.cpu_count(), "results": results}
    (args.out / "md_speed.json").write_text(json.dumps(payload, indent=2))
    text = f"# MD speed, aspirin, velocity Verlet through ASE, {args.threads} threads\n\n{table(results)}\n\n`{command.strip()}`\n"
    (args.out / "md_speed.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
