"""Neighbour lists: the package's (torch-cluster radius search over lattice images) against vesin
(a cell list, on PyPI) and ASE's ``neighbor_list``, on periodic water boxes and open molecules.

Every backend must return the same directed pairs with the same cell shifts (checked here as
sorted (i, j, S) rows) before its time counts. Times are the median of ``--repeats`` calls, one
process, ``--threads`` torch threads.

    python benchmarks/bench_neighborlist.py     # writes benchmarks/results/neighborlist/neighborlist.{json,md}

Run it with nothing else busy.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
OUT = ROOT / "benchmarks" / "results" / "neighborlist"


def _pairs(edge_index: np.ndarray, shift: np.ndarray) -> np.ndarray:
    rows = np.concatenate([edge_index.T, shift], axis=1).astype(np.int64)  # [E, 5] (j, i, S)
    return rows[np.lexsort(rows.T[::-1])]


def ours(atoms, cutoff):
    from equiformer_lite.data.neighborlist import neighbor_list

    return neighbor_list(atoms.positions, cutoff, atoms.cell.array if atoms.pbc.any() else None, atoms.pbc)


def vesin_list(atoms, cutoff):
    from vesin import NeighborList

    i, j, s = NeighborList(cutoff=cutoff, full_list=True).compute(
        atoms.positions, atoms.cell.array, atoms.pbc if atoms.pbc.any() else False, quantities="ijS"
    )
    return np.stack([j, i]).astype(np.int64), np.asarray(s, dtype=np.int64)


def ase_list(atoms, cutoff):
    from ase.neighborlist import neighbor_list

    i, j, s = neighbor_list("ijS", atoms, cutoff)
    return np.stack([j, i]).astype(np.int64), s.astype(np.int64)


BACKENDS = {"ours (torch-cluster over images)": ours, "vesin": vesin_list, "ase": ase_list}


def systems():
    from equiformer_lite.data import read_structures

    water = read_structures(str(ROOT / "equiformer_lite" / "resources" / "water_box_gfn2_md.extxyz.gz"))[0]
    water.calc = None
    out = [("aspirin (21 atoms, open)", _aspirin())]
    for reps in ((1, 1, 1), (2, 2, 2), (4, 4, 4), (8, 8, 4)):
        box = water.repeat(reps)
        out.append((f"water box {len(box)} atoms", box))
    big = _aspirin_cluster()
    out.append((f"open cluster {len(big)} atoms", big))
    return out


def _aspirin():
    import gzip

    from ase.io import read

    with gzip.open(ROOT / "benchmarks" / "data" / "aspirin_gfn2_md.extxyz.gz", "rt") as fh:
        return read(fh, index=0, format="extxyz")


def _aspirin_cluster():
    """A 5x5x5 grid of aspirin molecules 8 Å apart (open boundaries)."""
    base = _aspirin()
    base.calc = None
    atoms = base.copy()
    for x in range(5):
        for y in range(5):
            for z in range(5):
                if x == y == z == 0:
                    continue
                shifted = base.copy()
                shifted.translate([8.0 * x, 8.0 * y, 8.0 * z])
                atoms += shifted
    return atoms


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cutoff", type=float, default=5.0)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    rows = []
    for name, atoms in systems():
        reference = None
        for backend, fn in BACKENDS.items():
            edge_index, shift = fn(atoms, args.cutoff)  # warm-up and the check
            pairs = _pairs(edge_index, shift)
            if reference is None:
                reference = pairs
            same = pairs.shape == reference.shape and bool((pairs == reference).all())
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                fn(atoms, args.cutoff)
                times.append(time.perf_counter() - start)
            row = {"system": name, "atoms": len(atoms), "backend": backend, "pairs": int(pairs.shape[0]),
                   "same_pairs_as_ours": same, "median_ms": 1e3 * statistics.median(times)}
            rows.append(row)
            print(f"{name:<28} {backend:<34} {row['pairs']:>9} pairs  same={same!s:<5} {row['median_ms']:9.2f} ms", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/bench_neighborlist.py" + "".join(f" {a}" for a in (argv or []))
    (args.out / "neighborlist.json").write_text(json.dumps({"command": command, "cutoff": args.cutoff,
                                                            "threads": args.threads, "rows": rows}, indent=2))
    lines = [f"Neighbour lists at cutoff {args.cutoff} Å, {args.threads} threads; `{command}`", "",
             "| system | backend | pairs | same pairs | median ms |", "|---|---|---|---|---|"]
    lines += [f"| {r['system']} | {r['backend']} | {r['pairs']} | {'yes' if r['same_pairs_as_ours'] else 'NO'} | {r['median_ms']:.2f} |"
              for r in rows]
    (args.out / "neighborlist.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
