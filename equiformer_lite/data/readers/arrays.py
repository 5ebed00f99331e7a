"""Helpers of the array layouts (MD17 npz, ANI HDF5): label keys with a layout's own names,
shape checks naming the array, frames from ``[frames, atoms, 3]`` arrays."""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

import numpy as np
from ase import Atoms

from .. import keys
from ..labels import LabelSpec

__all__ = ["find_label_arrays", "expect_shape", "frames_from_arrays", "as_str"]


def _resolve_key(available: Sequence[str], label: str, requested: Optional[str], alternatives: Sequence[str]):
    """``requested`` if the file has it; the layout's names for a label left at its default key."""
    if requested is None:
        return None
    if requested in available:
        return requested
    if requested == label:
        return next((alt for alt in alternatives if alt in available), None)
    return None


def find_label_arrays(
    where: str, available: Sequence[str], labels: LabelSpec, alternatives: Mapping[str, Sequence[str]]
) -> dict[str, str]:
    """Label -> array name for the labels present; a required label, or one asked for under a
    non-default key, that is not found is a ValueError listing the keys tried and the arrays present."""
    found = {
        label: _resolve_key(available, label, key, alternatives.get(label, ()))
        for label, key in labels.label_keys.items()
    }
    for label, key in labels.label_keys.items():
        asked = label in labels.require or key not in (None, label)
        if asked and found[label] is None:
            tried = [key] + (list(alternatives.get(label, ())) if key == label else [])
            raise ValueError(
                f"{where}: {label} label not found (tried keys {tried}); arrays present: "
                f"{sorted(available)}. Pass {label}_key=..."
                + (" or drop it from require." if label in labels.require else ".")
            )
    return {label: name for label, name in found.items() if name is not None}


def expect_shape(where: str, name: str, array: np.ndarray, shapes: Sequence[tuple], note: str = "") -> None:
    shapes = [tuple(s) for s in shapes]
    if array.shape not in shapes:
        text = " or ".join(str(s) for s in shapes)
        raise ValueError(f"{where}: array '{name}' must have shape {text}{note}, got {array.shape}")


def frames_from_arrays(
    where: str,
    names: dict[str, str],
    get: Callable[[str], Any],
    numbers: np.ndarray,
    cell: Optional[np.ndarray],
) -> list[Atoms]:
    """Atoms of every frame from positions [F, N, 3], numbers [N] or [F, N] and label arrays;
    labels under their standard keys in ``info``/``arrays`` (in the file's units)."""
    pos = np.asarray(get(names["positions"]), dtype=np.float64)
    if pos.ndim != 3 or pos.shape[2] != 3:
        name = names["positions"]
        raise ValueError(f"{where}: array '{name}' must have shape (frames, atoms, 3), got {pos.shape}")
    n_frames, n_atoms = pos.shape[:2]
    expect_shape(where, names["numbers"], numbers, [(n_atoms,), (n_frames, n_atoms)])
    found: dict[str, np.ndarray] = {}
    if names.get(keys.ENERGY):
        e = np.asarray(get(names[keys.ENERGY]), dtype=np.float64)
        expect_shape(where, names[keys.ENERGY], e, [(n_frames,), (n_frames, 1)])
        found[keys.ENERGY] = e.reshape(n_frames)
    if names.get(keys.FORCES):
        f = np.asarray(get(names[keys.FORCES]), dtype=np.float64)
        expect_shape(where, names[keys.FORCES], f, [pos.shape], " like the positions")
        found[keys.FORCES] = f
    if names.get(keys.STRESS):
        s = np.asarray(get(names[keys.STRESS]), dtype=np.float64)
        expect_shape(where, names[keys.STRESS], s, [(n_frames, 3, 3), (n_frames, 6)])
        found[keys.STRESS] = s
    numbers = np.broadcast_to(numbers, (n_frames, n_atoms))
    frames = []
    for i in range(n_frames):
        atoms = Atoms(numbers=numbers[i], positions=pos[i], cell=cell, pbc=cell is not None)
        if keys.ENERGY in found:
            atoms.info[keys.ENERGY] = found[keys.ENERGY][i]
        if keys.FORCES in found:
            atoms.new_array(keys.FORCES, found[keys.FORCES][i])
        if keys.STRESS in found:
            atoms.info[keys.STRESS] = found[keys.STRESS][i]
        frames.append(atoms)
    return frames


def as_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
