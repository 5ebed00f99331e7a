"""Speed of SE3Potential and of the neighbour list, with references measured in the same run.

    python benchmarks/bench_se3_potential.py [--threads 2] [--repeats 5] [--json out.json]

Reports median wall times of: the neighbour list (ours vs ASE's ``neighbor_list``), the model's
energy-only forward pass, energy + forces, energy + forces + stress, and one ASE calculator call,
for the default SE3Potential (lmax 2, 16 channels, 3 layers, 4 heads, cutoff 5 Å) on an open
molecule and periodic cells. Ratios are quoted against the energy-only pass and against ASE's
neighbour list timed in the same process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from ase.build import bulk, molecule
from ase.neighborlist import neighbor_list as ase_neighbor_list

from equiformer_lite import EquiformerCalculator, SE3Potential, atoms_to_graph
from equiformer_lite.data import neighbor_list


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def structures():
    ethanol = molecule("CH3CH2OH")
    diamond64 = bulk("C", "diamond", a=3.57, cubic=True) * (2, 2, 2)
    diamond64.rattle(0.02, seed=0)
    diamond216 = bulk("C", "diamond", a=3.57, cubic=True) * (3, 3, 3)
    diamond216.rattle(0.02, seed=0)
    return {"ethanol (9 atoms)": ethanol, "diamond 64 atoms": diamond64, "diamond 216 atoms": diamond216}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dtype = getattr(torch, args.dtype)
    torch.manual_seed(0)
    model = SE3Potential(["H", "C", "O"], cutoff=5.0).to(dtype).eval()
    results = {}
    print(f"torch {torch.__version__}, {args.threads} threads, {args.dtype}, default SE3Potential "
          f"({sum(p.numel() for p in model.parameters())} parameters)")
    for name, atoms in structures().items():
        graph = atoms_to_graph(atoms, model.cutoff, dtype=dtype, with_labels=False)
        periodic = bool(atoms.pbc.all())
        t_nl = median_time(lambda: neighbor_list(atoms.positions, 5.0, atoms.cell.array, atoms.pbc), args.repeats)
        t_nl_ase = median_time(lambda: ase_neighbor_list("ij", atoms, 5.0), args.repeats)
        with torch.no_grad():
            t_energy = median_time(lambda: model(graph, compute_forces=False, compute_stress=False), args.repeats)
        t_forces = median_time(lambda: model(graph, compute_stress=False), args.repeats)
        t_stress = median_time(lambda: model(graph, compute_stress=True), args.repeats) if periodic else None
        atoms.calc = EquiformerCalculator(model)

        def calc_call():
            atoms.calc.reset()
            atoms.get_forces()

        t_calc = median_time(calc_call, args.repeats)
        row = {
            "atoms": len(atoms),
            "edges": int(graph.num_edges),
            "neighbor_list_s": t_nl,
            "ase_neighbor_list_s": t_nl_ase,
            "energy_s": t_energy,
            "energy_forces_s": t_forces,
            "energy_forces_stress_s": t_stress,
            "ase_calculator_call_s": t_calc,
        }
        results[name] = row
        print(f"\n{name}: {row['edges']} edges")
        print(f"  neighbour list      {t_nl * 1e3:8.2f} ms   (ASE neighbor_list {t_nl_ase * 1e3:.2f} ms, ratio {t_nl / t_nl_ase:.2f})")
        print(f"  energy only         {t_energy * 1e3:8.2f} ms   (reference)")
        print(f"  energy + forces     {t_forces * 1e3:8.2f} ms   ({t_forces / t_energy:.2f}x energy only)")
        if t_stress is not None:
            print(f"  + stress            {t_stress * 1e3:8.2f} ms   ({t_stress / t_energy:.2f}x energy only)")
        print(f"  ASE calculator call {t_calc * 1e3:8.2f} ms   ({t_calc / t_energy:.2f}x energy only; "
              f"{len(atoms) / t_calc:.0f} atoms/s)")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=2)


if __name__ == "__main__":
    main()
