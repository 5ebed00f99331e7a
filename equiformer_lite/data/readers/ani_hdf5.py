"""HDF5 in the ANI layout (needs the optional dependency h5py).

Groups, nested or not, holding ``species`` (element symbols) or ``atomic_numbers``,
``coordinates [frames, atoms, 3]``, ``energies [frames]`` (Hartree) and optionally
``forces [frames, atoms, 3]`` (Hartree/Å).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from ase import Atoms
from ase.data import atomic_numbers

from .. import keys
from ..labels import LABELS, LabelSpec
from .arrays import as_str, find_label_arrays, frames_from_arrays
from .base import RawFrames, Reader, register_reader

__all__ = ["read_ani_hdf5"]

_ALTERNATIVES = {keys.ENERGY: ("energies",)}


def _import_h5py():
    try:
        import h5py
    except ImportError as err:
        raise ImportError("reading HDF5 (ANI layout) needs h5py, an optional dependency: pip install h5py") from err
    return h5py


def read_ani_hdf5(path: Path, labels: LabelSpec) -> RawFrames:
    h5py = _import_h5py()
    frames: list[Atoms] = []
    frame_names: list[str] = []
    file_keys: dict[str, str] = {}
    with h5py.File(path, "r") as h5:
        groups = [h5] if "coordinates" in h5 else []
        h5.visititems(lambda _, obj: groups.append(obj) if isinstance(obj, h5py.Group) and "coordinates" in obj else None)
        if not groups:
            raise ValueError(f"{path}: no group holds a 'coordinates' dataset (ANI layout)")
        for group in groups:
            where = f"{path}, group '{group.name}'"
            available = list(group.keys())
            names = find_label_arrays(where, available, labels, _ALTERNATIVES)
            names["positions"] = "coordinates"
            names["numbers"] = next((k for k in ("species", "atomic_numbers") if k in available), "")
            if not names["numbers"]:
                raise ValueError(f"{where}: neither 'species' nor 'atomic_numbers'; datasets present: {sorted(available)}")
            numbers = _ani_numbers(where, names["numbers"], group[names["numbers"]][()])
            group_frames = frames_from_arrays(where, names, lambda k: group[k][()], numbers, None)
            frames += group_frames
            frame_names += [f"group '{group.name}' frame {i}" for i in range(len(group_frames))]
            file_keys.update({label: names[label] for label in LABELS if label in names})
    read_keys = {label: (label if label in file_keys else None) for label in LABELS}
    return RawFrames(frames, frame_names, read_keys, file_keys, "Hartree", "Å", "ANI default (Hartree, Å)")


def _ani_numbers(where: str, name: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    symbols = [as_str(v) for v in values.reshape(-1)]
    unknown = sorted({s for s in symbols if s not in atomic_numbers})
    if unknown:
        raise ValueError(f"{where}: unknown element symbol(s) {unknown} in '{name}'")
    return np.array([atomic_numbers[s] for s in symbols], dtype=np.int64).reshape(values.shape)


register_reader(Reader("hdf5", read_ani_hdf5, aliases=("h5", "ani"), suffixes=(".h5", ".hdf5")))
