"""Validation shared by every reader and by in-memory structures: per frame and across frames."""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator

from .. import keys
from ..graph import read_labels, validate_atoms
from ..labels import DEFAULT_LABELS, LabelSpec
from ..species import check_elements, parse_species

__all__ = ["validate_structures"]


def _keys_present(atoms: Atoms) -> str:
    arrays = sorted(k for k in atoms.arrays if k not in ("numbers", "positions"))
    results = sorted(atoms.calc.results) if isinstance(atoms.calc, SinglePointCalculator) else []
    return f"info {sorted(atoms.info)}, arrays {arrays}, calculator results {results}"


def validate_structures(
    structures: Sequence[Atoms],
    labels: LabelSpec = DEFAULT_LABELS,
    *,
    species: Optional[Sequence[str]] = None,
    source: str = "structures",
    frame_names: Optional[Sequence[str]] = None,
) -> list[dict[str, np.ndarray]]:
    """Validate structures and their labels, naming the source and frame of any problem.

    Each structure goes through :func:`~equiformer_lite.data.validate_atoms` (empty frames,
    non-finite positions, invalid elements, degenerate cells) and
    :func:`~equiformer_lite.data.read_labels` (label shapes, NaN/inf, stress without a periodic
    cell). On top of those, across frames:

    * a label in ``labels.require`` must be in every frame; the error lists the keys that *are* present;
    * energy and forces asked for under a non-default key must be in every frame, and when
      present in some frames, in all (a batch cannot mix them);
    * stress may be in some frames only (molecules next to crystals): the data set pads the
      others with a zero stress of weight 0 (see :func:`~equiformer_lite.data.graph.pad_missing_stress`);
      asked for under a non-default key, it must be in at least one frame;
    * forces that are exactly zero in every frame with more than one atom are rejected: that
      is a wrong key or unit, not physics (single atoms legitimately have zero force);
    * elements outside ``species``, when given.

    Returns
    -------
    list of label dicts, one per structure, in the structures' units (see :func:`read_labels`).
    """
    label_keys, require = labels.label_keys, labels.require
    names = list(frame_names) if frame_names is not None else [f"frame {i}" for i in range(len(structures))]
    if species is not None:
        species = parse_species(species)

    all_labels: list[dict[str, np.ndarray]] = []
    for atoms, name in zip(structures, names):
        try:
            validate_atoms(atoms)
            found = read_labels(atoms, labels)
        except ValueError as err:
            raise ValueError(f"{source}, {name}: {err}") from err
        if species is not None:
            check_elements(torch.as_tensor(atoms.numbers), species, f"{source}, {name}")
        all_labels.append(found)

    # A label under a non-default key (the default key is the label's own name) was asked for.
    requested = set(require) | {label for label, key in label_keys.items() if key not in (None, label)}
    for label, key in label_keys.items():
        missing = [i for i, found in enumerate(all_labels) if label not in found]
        if not missing or len(missing) == len(all_labels) and label not in requested:
            continue
        if label == keys.STRESS and label not in require and len(missing) < len(all_labels):
            continue  # partial stress is padded with weight 0 by the data set
        i = missing[0]
        if label in requested:
            why = "required" if label in require else f"asked for under key {key!r}"
            raise ValueError(
                f"{source}, {names[i]}: {label} label ({why}) not found under key {key!r} "
                f"(missing in {len(missing)} of {len(all_labels)} frames). Keys present: "
                f"{_keys_present(structures[i])}. Pass {label}_key=... to read another key"
                + (f", or drop {label!r} from require." if label in require else ".")
            )
        raise ValueError(
            f"{source}: {label} label (key {key!r}) is present in {len(all_labels) - len(missing)} of "
            f"{len(all_labels)} frames but missing in frames {[names[j] for j in missing[:10]]}: "
            f"every frame must have it or none (pass {label}_key=None to leave it out everywhere)"
        )

    missing = [names[i] for i, found in enumerate(all_labels) if keys.ATOMIC_ENERGIES not in found]
    if 0 < len(missing) < len(all_labels):
        raise ValueError(
            f"{source}: per-atom energies (key {labels.atomic_energies_key!r}) are present in "
            f"{len(all_labels) - len(missing)} of {len(all_labels)} frames but missing in frames {missing[:10]}: "
            "every frame must have them or none"
        )

    with_forces = [found[keys.FORCES] for found in all_labels if keys.FORCES in found]
    many = [f for f in with_forces if len(f) > 1]
    if many and all(not f.any() for f in many):
        raise ValueError(
            f"{source}: forces (key {labels.forces_key!r}) are exactly zero in every frame with more than one "
            f"atom ({len(many)} frames): most likely a wrong key or unit. Pass forces_key=... for the "
            "right key, or forces_key=None to train without forces."
        )
    return all_labels
