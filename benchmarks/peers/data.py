"""The peer benchmark's data: the aspirin GFN2-xTB MD set and its rMD17-style split into three files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from ase.io import read, write

ROOT = Path(__file__).resolve().parents[2]
ASPIRIN = ROOT / "benchmarks" / "data" / "aspirin_gfn2_md.extxyz.gz"
# Labels go under keys no ASE calculator claims: ASE's reader turns `energy`/`forces` into a
# single-point calculator, where MACE's reader does not look (it would train on nothing).
ENERGY_KEY, FORCES_KEY = "REF_energy", "REF_forces"


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def split_files(source: Path, workdir: Path, *, n_train: int = 950, n_val: int = 50, n_test: int = 1000,
                seed: int = 1) -> dict:
    """Random disjoint train/validation/test frames of ``source`` written as extended XYZ
    (``REF_energy`` eV, ``REF_forces`` eV/Å) into ``workdir``; reused when already there."""
    digest = sha256(source)
    out = workdir / f"{digest[:12]}_{n_train}_{n_val}_{n_test}_s{seed}"
    paths = {name: out / f"{name}.xyz" for name in ("train", "val", "test")}
    split = {**paths, "energy_key": ENERGY_KEY, "forces_key": FORCES_KEY, "source": str(source),
             "source_sha256": digest, "sizes": [n_train, n_val, n_test], "seed": seed}
    if all(p.exists() for p in paths.values()):
        return split
    frames = read(source, index=":")
    if n_train + n_val + n_test > len(frames):
        raise ValueError(f"{source} has {len(frames)} frames, fewer than the {n_train + n_val + n_test} asked for")
    order = np.random.default_rng(seed).permutation(len(frames))
    bounds = np.cumsum([0, n_train, n_val, n_test])
    out.mkdir(parents=True, exist_ok=True)
    for (name, path), lo, hi in zip(paths.items(), bounds[:-1], bounds[1:]):
        chosen = []
        for index in np.sort(order[lo:hi]):
            atoms = frames[index]
            clean = atoms.__class__(numbers=atoms.numbers, positions=atoms.positions)
            clean.info[ENERGY_KEY] = float(atoms.get_potential_energy())
            clean.arrays[FORCES_KEY] = np.asarray(atoms.get_forces())
            clean.info["frame"] = int(index)
            chosen.append(clean)
        tmp = path.with_suffix(".tmp.xyz")
        write(tmp, chosen, format="extxyz")
        tmp.replace(path)
    return split
