"""Cost against system size: time and peak memory per atom for energy + forces.

    python benchmarks/bench_scaling.py [--models gatv2 se3 se3_node ...] [--max-atoms 20000] [--threads 2]
                                       [--memory-budget-gib 20] [--json out.json]

The systems are supercells of the bundled liquid-water box (24 atoms of a 375 K GFN2-xTB MD
frame, triclinic, 0.1 atoms/Å³): from 96 to ~19,000 atoms, periodic, with the models' default
5 Å cutoff (~50 neighbours per atom). Each (model, size) runs in a fresh subprocess, so the
peak resident memory of one measurement is not inherited from another:

* the graph (neighbour list) is built first and timed on its own;
* then the kernel's peak-RSS counter is reset (``/proc/self/clear_refs``) and a first
  energy + forces evaluation (no stress) runs; peak memory = the peak RSS during it minus the
  RSS before it (model weights and the graph are in the baseline);
* the time is the median of the following evaluations (3 up to 3,000 atoms, then 1), so
  first-call page faults and allocator warm-up are not in it.

Models: at their constructor defaults, float32, as the calculator runs them (``model.for_inference()``:
eval mode, parameters that need no gradient); ``se3_node`` is ``SE3Potential`` with
``message_mixing="node"``, ``*_recompute`` the same with ``recompute_layers=True`` (each layer
recomputed in the backward instead of storing its intermediates), ``se3_whole`` the default with
``chunk_edges=None`` (every layer attends all edges at once, as before 2026-12-07), ``a2i``
``A2IPotential`` (attention over all atoms of the cell, no edges: its memory grows with the
square of the atoms, and the budget check and the largest size are extrapolated so). Sizes whose memory, extrapolated
from the previous size, would exceed ``--memory-budget-gib`` are skipped (reported as such), and
the largest size that fits the budget is extrapolated from the peak of the largest measured size.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

# Repeats of the 24-atom box: 96, 288, 1,152, 3,000, 9,408, 19,440 atoms (and 48,384 with --max-atoms 50000).
REPEATS = [(2, 2, 1), (3, 2, 2), (4, 4, 3), (5, 5, 5), (8, 7, 7), (10, 9, 9), (14, 12, 12)]

# Benchmark names -> (registered model type, constructor arguments beyond the defaults).
VARIANTS = {
    "gatv2": ("gatv2", {}),
    "se3": ("se3", {}),
    "se3_whole": ("se3", {"chunk_edges": None}),
    "se3_node": ("se3", {"message_mixing": "node"}),
    "se3_recompute": ("se3", {"recompute_layers": True}),
    "se3_node_recompute": ("se3", {"message_mixing": "node", "recompute_layers": True}),
    "a2i": ("a2i", {}),
}
# How peak memory grows with the atoms (for the budget check and the largest size that fits):
# linearly for the local models, with the square of the atoms for A2I's attention over all atoms.
MEMORY_EXPONENT = {"a2i": 2}


def _rss_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{field} not in /proc/self/status")


def child(name: str, repeat: tuple[int, int, int], threads: int) -> dict:
    """One measurement, in this (fresh) process."""
    import gc

    import torch
    from ase.io import read

    from equiformer_lite import atoms_to_graph, build_model
    from equiformer_lite.train import resolve_data_paths

    torch.set_num_threads(threads)
    atoms = read(resolve_data_paths("bundled:water_box")[0], index=0) * repeat
    torch.manual_seed(0)
    model_type, overrides = VARIANTS[name]
    model = build_model(model_type, species=["H", "O"], dtype="float32", **overrides).for_inference()
    start = time.perf_counter()
    graph = atoms_to_graph(atoms, model.graph_cutoff, dtype=torch.float32, with_labels=False)
    graph_s = time.perf_counter() - start
    num_atoms, num_edges = len(atoms), int(graph.edge_index.shape[1])

    def run() -> float:
        start = time.perf_counter()
        out = model(graph, compute_stress=False)
        assert torch.isfinite(out["forces"]).all()
        return time.perf_counter() - start

    gc.collect()
    baseline = _rss_bytes("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak-RSS counter (VmHWM) to the current RSS
    run()  # the first call: its peak is the memory measurement (later calls reuse freed memory)
    peak = _rss_bytes("VmHWM") - baseline
    repeats = 3 if num_atoms <= 3000 else 1
    times = [run() for _ in range(repeats)]  # steady state, after the first call
    seconds = statistics.median(times)
    return {
        "model": name,
        "atoms": num_atoms,
        "edges": num_edges,
        "parameters": sum(p.numel() for p in model.parameters()),
        "graph_s": graph_s,
        "energy_forces_s": seconds,
        "us_per_atom": 1e6 * seconds / num_atoms,
        "peak_mib": peak / 2**20,
        "kib_per_atom": peak / 1024 / num_atoms,
        "repeats": repeats,
    }


def predicted_bytes(row: dict, atoms: int, exponent: int) -> float:
    """Peak memory at ``atoms`` extrapolated from a measured ``row`` (peak ~ atoms ** exponent)."""
    return row["peak_mib"] * 2**20 * (atoms / row["atoms"]) ** exponent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["gatv2", "se3"], choices=sorted(VARIANTS))
    parser.add_argument("--max-atoms", type=int, default=20000)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--memory-budget-gib", type=float, default=20.0, help="skip sizes predicted to need more")
    parser.add_argument("--json", help="write all rows to this file")
    parser.add_argument("--child", nargs=4, metavar=("MODEL", "A", "B", "C"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model, *repeat = args.child
        print(json.dumps(child(model, tuple(int(r) for r in repeat), args.threads)))
        return

    budget = args.memory_budget_gib * 2**30
    rows = []
    print(f"{'model':>6} {'atoms':>7} {'edges':>10} {'graph s':>8} {'E+F s':>8} {'µs/atom':>8} {'peak MiB':>9} {'KiB/atom':>9}")
    for model in args.models:
        previous = None
        for repeat in REPEATS:
            atoms = 24 * repeat[0] * repeat[1] * repeat[2]
            if atoms > args.max_atoms:
                break
            predicted = previous and predicted_bytes(previous, atoms, MEMORY_EXPONENT.get(model, 1))
            if previous and predicted > budget:
                print(f"{model:>6} {atoms:>7}  skipped: ~{predicted / 2**30:.1f} GiB predicted > budget")
                rows.append({"model": model, "atoms": atoms, "skipped": "memory budget"})
                continue
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
            cmd = [sys.executable, __file__, "--threads", str(args.threads), "--child", model, *map(str, repeat)]
            result = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if result.returncode != 0:
                print(f"{model:>6} {atoms:>7}  failed: {result.stderr.strip().splitlines()[-1:]}")
                rows.append({"model": model, "atoms": atoms, "failed": result.stderr[-2000:]})
                continue
            row = json.loads(result.stdout.strip().splitlines()[-1])
            rows.append(row)
            previous = row
            print(f"{model:>6} {row['atoms']:>7} {row['edges']:>10} {row['graph_s']:>8.2f} {row['energy_forces_s']:>8.3f} "
                  f"{row['us_per_atom']:>8.1f} {row['peak_mib']:>9.0f} {row['kib_per_atom']:>9.1f}", flush=True)
        if previous:
            exponent = MEMORY_EXPONENT.get(model, 1)
            largest = int(previous["atoms"] * (budget / (previous["peak_mib"] * 2**20)) ** (1 / exponent))
            growth = "linear" if exponent == 1 else f"peak ~ atoms^{exponent}"
            print(f"{model:>6}: from {previous['atoms']:,} atoms ({previous['peak_mib']:.0f} MiB, {growth}), "
                  f"{args.memory_budget_gib:g} GiB hold ~{largest:,} atoms")
            rows.append({"model": model, "extrapolated_max_atoms": largest, "budget_gib": args.memory_budget_gib})
    if args.json:
        with open(args.json, "w") as f:
            json.dump(rows, f, indent=2)


if __name__ == "__main__":
    main()
