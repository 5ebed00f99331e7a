"""Generate equiformer_lite/resources/audit_structures.extxyz, the structures the default audit runs on.

Deterministic (fixed seed): molecules from ASE's G2 set and two small periodic cells, each rattled
so that no symmetry hides an equivariance bug. No labels: the audit checks properties that hold
for any weights. Run from the repository root:  python scripts/make_audit_structures.py
"""

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.build import bulk, molecule
from ase.io import write

OUT = Path(__file__).resolve().parents[1] / "equiformer_lite" / "resources" / "audit_structures.extxyz"


def main() -> None:
    rng = np.random.default_rng(20261121)
    structures = []
    for name in ("CH3CH2OH", "H2O", "CH3COOH"):
        atoms = molecule(name)
        atoms.rattle(0.05, seed=int(rng.integers(1 << 31)))
        atoms.info["name"] = name
        structures.append(atoms)

    # Diamond primitive cell: 2 atoms in a skewed (FCC) cell, so a 5 Å cutoff meets many images.
    diamond = bulk("C", "diamond", a=3.57)
    diamond.rattle(0.05, seed=int(rng.integers(1 << 31)))
    diamond.info["name"] = "diamond primitive cell"
    structures.append(diamond)

    # Two water molecules in a triclinic box: mixed species, atoms partly outside the cell.
    water = molecule("H2O")
    box = Atoms(cell=[[5.0, 0.0, 0.0], [0.8, 4.6, 0.0], [0.4, 0.6, 4.8]], pbc=True)
    for centre in ([1.0, 1.0, 1.0], [3.6, 3.2, 3.9]):
        mol = water.copy()
        mol.rotate(float(rng.uniform(0, 360)), rng.normal(size=3), center="COM")
        mol.translate(np.array(centre) - mol.get_center_of_mass())
        box += mol
    box.rattle(0.05, seed=int(rng.integers(1 << 31)))
    box.info["name"] = "two waters, triclinic box"
    structures.append(box)

    OUT.parent.mkdir(parents=True, exist_ok=True)
    write(OUT, structures, format="extxyz")
    print(f"wrote {len(structures)} structures to {OUT}")


if __name__ == "__main__":
    main()
