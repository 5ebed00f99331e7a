"""``.npz`` in the MD17/sGDML layout.

Arrays: ``R [frames, atoms, 3]``, ``z [atoms]``, ``E [frames]`` or ``[frames, 1]``,
``F [frames, atoms, 3]`` (the revised-MD17 names ``coords``, ``nuclear_charges``, ``energies``,
``forces`` too), optional ``lattice [3, 3]``. These files are in kcal/mol and kcal/mol/Å unless
they declare ``e_unit``/``r_unit``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .. import keys
from ..labels import LABELS, LabelSpec
from .arrays import as_str, expect_shape, find_label_arrays, frames_from_arrays
from .base import RawFrames, Reader, register_reader

__all__ = ["read_npz"]

_ALTERNATIVES = {keys.ENERGY: ("E", "energies"), keys.FORCES: ("F", "forces")}


def read_npz(path: Path, labels: LabelSpec) -> RawFrames:
    where = str(path)
    with np.load(path, allow_pickle=False) as npz:
        available = list(npz.files)
        names = find_label_arrays(where, available, labels, _ALTERNATIVES)
        names["positions"] = next((k for k in ("R", "coords") if k in available), "")
        names["numbers"] = next((k for k in ("z", "nuclear_charges") if k in available), "")
        for what in ("positions", "numbers"):
            if not names[what]:
                raise ValueError(f"{where}: no {what} array ('R'/'coords' and 'z'/'nuclear_charges' "
                                 f"in the MD17 layout); arrays present: {sorted(available)}")
        numbers = np.asarray(npz[names["numbers"]])
        if not np.issubdtype(numbers.dtype, np.integer):
            name = names["numbers"]
            raise ValueError(f"{where}: array '{name}' must hold integer atomic numbers, got {numbers.dtype}")
        cell = np.asarray(npz["lattice"], dtype=np.float64) if "lattice" in available else None
        if cell is not None:
            expect_shape(where, "lattice", cell, [(3, 3)])
        frames = frames_from_arrays(where, names, lambda k: npz[k], numbers, cell)
        declared = {u: as_str(npz[u].item()) for u in ("e_unit", "r_unit") if u in available}
    file_keys = {label: names[label] for label in LABELS if label in names}
    source = "declared by the file (e_unit/r_unit)" if declared else "MD17/sGDML default (kcal/mol, Å)"
    read_keys = {label: (label if label in names else None) for label in LABELS}
    return RawFrames(frames, [f"frame {i}" for i in range(len(frames))], read_keys, file_keys,
                     declared.get("e_unit", "kcal/mol"), declared.get("r_unit", "Å"), source)


register_reader(Reader("npz", read_npz, aliases=("md17", "sgdml"), suffixes=(".npz",)))
