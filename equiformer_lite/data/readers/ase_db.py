"""ASE databases (``.db``, ASE ``.json``), read row by row with :func:`ase.db.connect`.

A row's calculator results (energy, forces, stress) come with :meth:`row.toatoms`; labels kept
in its key-value pairs or ``data`` are exposed in ``atoms.info``/``atoms.arrays`` so that a
:class:`~equiformer_lite.data.LabelSpec` key reaches them too. eV and Å, as ASE stores them.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import numpy as np

from ..labels import LabelSpec
from .base import RawFrames, Reader, register_reader

__all__ = ["read_db"]


def read_db(path: Path, labels: LabelSpec) -> RawFrames:
    import ase.db

    try:
        rows = list(ase.db.connect(str(path)).select())
    except (sqlite3.DatabaseError, ValueError, KeyError) as err:  # not SQLite, or not ASE's tables
        raise ValueError(f"{path}: not a readable ASE database ({type(err).__name__}: {err})") from err
    structures, names = [], []
    for row in rows:
        atoms = row.toatoms()  # calculator results: energy, forces, stress
        for key, value in row.key_value_pairs.items():
            atoms.info.setdefault(key, value)
        for key, value in (row.data or {}).items():
            value = np.asarray(value)
            if value.ndim >= 1 and len(value) == len(atoms) and key not in atoms.arrays:
                atoms.new_array(key, value)
            else:
                atoms.info.setdefault(key, value)
        structures.append(atoms)
        names.append(f"row id {row.id}")
    file_keys = {k: v for k, v in labels.label_keys.items() if v is not None}
    return RawFrames(structures, names, labels.label_keys, file_keys)


register_reader(Reader("db", read_db, aliases=("ase-db", "json"), suffixes=(".db", ".json")))
