"""Neighbour lists: the package's (vesin's cell list) against the one it replaced (torch-cluster's
radius search over every lattice image, kept below; run only where torch-cluster is installed) and
ASE's ``neighbor_list``, on periodic water boxes and open molecules.

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

import itertools

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


# --- the package's neighbour list before vesin (equiformer_lite 0.1.0 up to 2026-12-02) -------------


def images_needed(cell: np.ndarray, pbc: np.ndarray, cutoff: float) -> np.ndarray:
    r"""Number of lattice images needed along each lattice vector.

    With atoms wrapped into the cell, fractional differences lie in (-1, 1), so an image shift
    :math:`S_k` can hold a neighbour only if :math:`|S_k| \le \lceil r_c / d_k \rceil`, where
    :math:`d_k = 1/\lVert b_k \rVert` is the spacing of the lattice planes normal to the
    reciprocal vector :math:`b_k`.

    Returns ``[3]`` int array (0 along non-periodic directions).
    """
    reciprocal = np.linalg.inv(cell).T  # rows b_k with a_i . b_k = delta_ik
    plane_spacing = 1.0 / np.linalg.norm(reciprocal, axis=1)
    n = np.ceil(cutoff / plane_spacing).astype(np.int64)
    return np.where(pbc, n, 0)


def _images_neighbor_list(
    positions: np.ndarray,
    cutoff: float,
    cell: np.ndarray | None = None,
    pbc: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """The former ``equiformer_lite.data.neighbor_list`` (same arguments and returns as today's)."""
    positions = np.asarray(positions, dtype=np.float64)
    pbc = np.zeros(3, dtype=bool) if pbc is None else np.asarray(pbc, dtype=bool)
    if not pbc.any():
        return _open_neighbor_list(positions, cutoff)
    return _periodic_neighbor_list(positions, cutoff, np.asarray(cell, dtype=np.float64), pbc)


def _open_neighbor_list(positions: np.ndarray, cutoff: float) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from torch_cluster import radius_graph

    n = len(positions)
    pos = torch.from_numpy(positions)
    # radius_graph returns (source, target) = (j, i); max_num_neighbors = n - 1 is no cap at all.
    edge_index = radius_graph(pos, r=cutoff, loop=False, max_num_neighbors=max(n - 1, 1))
    edge_index = edge_index.numpy().astype(np.int64)
    return edge_index, np.zeros((edge_index.shape[1], 3), dtype=np.int64)


def _periodic_neighbor_list(
    positions: np.ndarray, cutoff: float, cell: np.ndarray, pbc: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    import torch
    from torch_cluster import radius

    n_atoms = len(positions)
    frac = positions @ np.linalg.inv(cell)
    # Wrap along periodic directions only; remember the integer offset to undo it afterwards.
    offset = np.where(pbc, np.floor(frac), 0.0)
    wrapped = (frac - offset) @ cell

    n_img = images_needed(cell, pbc, cutoff)
    shifts = np.array(
        list(itertools.product(*(range(-k, k + 1) for k in n_img))), dtype=np.float64
    )  # [S, 3]
    images = (wrapped[None, :, :] + (shifts @ cell)[:, None, :]).reshape(-1, 3)  # [S * N, 3]

    # radius(x, y) finds, for every query y, the points of x within r: returns (y_idx, x_idx).
    receiver, image = radius(
        torch.from_numpy(images),
        torch.from_numpy(wrapped),
        r=cutoff,
        max_num_neighbors=len(images),
    ).numpy()
    sender = image % n_atoms
    shift = shifts[image // n_atoms]
    keep = ~((sender == receiver) & ~shift.any(axis=1))  # drop the zero-shift self pair
    receiver, sender, shift = receiver[keep], sender[keep], shift[keep]
    # Undo the wrapping: r_j - r_i + S.cell on wrapped positions equals
    # r_j - r_i + (S - off_j + off_i).cell on the positions the caller gave.
    shift = shift - offset[sender] + offset[receiver]
    edge_index = np.stack([sender, receiver]).astype(np.int64)
    return edge_index, np.rint(shift).astype(np.int64)



def images(atoms, cutoff):
    return _images_neighbor_list(atoms.positions, cutoff, atoms.cell.array if atoms.pbc.any() else None, atoms.pbc)


def ase_list(atoms, cutoff):
    from ase.neighborlist import neighbor_list

    i, j, s = neighbor_list("ijS", atoms, cutoff)
    return np.stack([j, i]).astype(np.int64), s.astype(np.int64)


BACKENDS = {"equiformer_lite (vesin)": ours, "before: torch-cluster over images": images, "ase": ase_list}


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
            if fn is images:
                try:
                    import torch_cluster  # noqa: F401
                except ImportError:
                    continue
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
                   "same_pairs_as_package": same, "median_ms": 1e3 * statistics.median(times)}
            rows.append(row)
            print(f"{name:<28} {backend:<34} {row['pairs']:>9} pairs  same={same!s:<5} {row['median_ms']:9.2f} ms", flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python benchmarks/bench_neighborlist.py" + "".join(f" {a}" for a in (argv or []))
    (args.out / "neighborlist.json").write_text(json.dumps({"command": command, "cutoff": args.cutoff,
                                                            "threads": args.threads, "rows": rows}, indent=2))
    lines = [f"Neighbour lists at cutoff {args.cutoff} Å, {args.threads} threads; `{command}`", "",
             "| system | backend | pairs | same pairs | median ms |", "|---|---|---|---|---|"]
    lines += [f"| {r['system']} | {r['backend']} | {r['pairs']} | {'yes' if r['same_pairs_as_package'] else 'NO'} | {r['median_ms']:.2f} |"
              for r in rows]
    (args.out / "neighborlist.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
