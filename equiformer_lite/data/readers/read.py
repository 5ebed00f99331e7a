"""The entry points: a file in, validated structures in eV and Å out, with a summary of the units."""

from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

import numpy as np
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.stress import full_3x3_to_voigt_6_stress

from .. import keys
from ..labels import DEFAULT_LABELS, LABELS, LabelSpec, unit_size
from .ase_files import read_ase
from .base import PathLike, ReadSummary, checked_source, reader_for
from .validate import validate_structures

__all__ = ["read_structures", "read_structures_with_summary"]

logger = logging.getLogger("equiformer_lite.data.readers")


def _to_standard(atoms: Atoms, found: dict[str, np.ndarray], read_keys: dict, energy: float, length: float) -> None:
    """Scale positions and cell to Å, labels to eV units, and store them in a single-point calculator."""
    atoms.set_cell(atoms.cell.array * length, scale_atoms=False)
    atoms.set_positions(atoms.get_positions() * length)
    # Drop every copy of a label under its file key or a standard key, so that the calculator
    # (in eV units) is the only source read_labels can find: info/arrays are searched first.
    for key in {*LABELS, "energies", *(k for k in read_keys.values() if k is not None)}:
        atoms.info.pop(key, None)
        if key in atoms.arrays and key not in ("numbers", "positions"):
            del atoms.arrays[key]
    results: dict[str, Any] = {}
    if keys.ENERGY in found:
        results["energy"] = float(found[keys.ENERGY][0]) * energy
    if keys.FORCES in found:
        results["forces"] = found[keys.FORCES] * (energy / length)
    if keys.STRESS in found:
        results["stress"] = full_3x3_to_voigt_6_stress(found[keys.STRESS][0]) * (energy / length**3)
    if keys.ATOMIC_ENERGIES in found:
        results["energies"] = found[keys.ATOMIC_ENERGIES] * energy
    atoms.calc = SinglePointCalculator(atoms, **results) if results else None


def read_structures_with_summary(
    path: PathLike,
    labels: LabelSpec = DEFAULT_LABELS,
    *,
    format: Optional[str] = None,
    species: Optional[Sequence[str]] = None,
) -> tuple[list[Atoms], ReadSummary]:
    """:func:`read_structures`, also returning the :class:`ReadSummary` of keys and units."""
    path, fmt = checked_source(path, labels, format)
    reader = reader_for(fmt)
    raw = reader.read(path, labels) if reader is not None else read_ase(path, labels, fmt)
    if not raw.structures:
        raise ValueError(f"{path}: no structures found")

    source = raw.unit_source
    if labels.has_units:
        source = "given as argument" + (f" (the rest: {raw.unit_source})" if None in (labels.energy_unit, labels.length_unit) else "")
    e_name, e_factor = unit_size(labels.energy_unit or raw.energy_unit, "energy")
    l_name, l_factor = unit_size(labels.length_unit or raw.length_unit, "length")

    missing = [label for label in labels.require if raw.read_keys.get(label) is None]
    if missing:  # the array layouts say which names they tried; this catches any other reader
        raise ValueError(f"{path}: the {fmt!r} reader found no {missing[0]} label, which is required "
                         f"(labels.require = {list(labels.require)})")
    read_as = labels.replace(energy_key=raw.read_keys[keys.ENERGY], forces_key=raw.read_keys[keys.FORCES],
                             stress_key=raw.read_keys[keys.STRESS])
    all_labels = validate_structures(raw.structures, read_as, species=species, source=str(path),
                                     frame_names=raw.frame_names)
    for atoms, found in zip(raw.structures, all_labels):
        _to_standard(atoms, found, raw.read_keys, e_factor, l_factor)
    present = {label for found in all_labels for label in found}
    summary = ReadSummary(
        path=str(path),
        format=fmt,
        num_structures=len(raw.structures),
        label_keys={
            **{label: raw.file_keys[label] for label in LABELS if label in present},
            **({keys.ATOMIC_ENERGIES: labels.atomic_energies_key} if keys.ATOMIC_ENERGIES in present else {}),
        },
        energy_unit=e_name,
        length_unit=l_name,
        energy_factor=e_factor,
        length_factor=l_factor,
        unit_source=source,
    )
    logger.info("read %s", summary.describe())
    assumed = (labels.energy_unit is None and e_factor != 1.0) or (labels.length_unit is None and l_factor != 1.0)
    if assumed and "default" in raw.unit_source:
        logger.warning("%s: assuming %s and %s (%s); set energy_unit/length_unit (LabelSpec, or data.energy_unit in a config) if the file differs",
                       path, e_name, l_name, source)
    return raw.structures, summary


def read_structures(
    path: PathLike,
    labels: LabelSpec = DEFAULT_LABELS,
    *,
    format: Optional[str] = None,
    species: Optional[Sequence[str]] = None,
) -> list[Atoms]:
    """Read labelled structures from a file, in eV, Å, eV/Å and eV/Å³.

    Parameters
    ----------
    path : file to read (see :mod:`equiformer_lite.data.readers` for the formats).
    labels : where the labels are, the file's units and the labels every frame must have
        (:class:`~equiformer_lite.data.LabelSpec`; default: ASE's keys and units, energy required).
        Forces are read in energy/length, stress in energy/length³; only positions, cell and
        labels are converted.
    format : reader or ASE format name; guessed from the suffix and content when None.
    species : if given, elements outside it are an error.

    Returns
    -------
    list of :class:`ase.Atoms`, labels in a :class:`SinglePointCalculator` under ``energy``
    (eV), ``forces`` ``[N, 3]`` (eV/Å), ``stress`` (Voigt ``[6]``, eV/Å³) and, when the file
    has them, per-atom energies ``energies`` ``[N]`` (eV). The units assumed are logged;
    :func:`read_structures_with_summary` returns them too.

    Raises
    ------
    ValueError naming the file and frame: missing labels (listing the keys present), wrong
    shapes, NaN/inf, all-zero forces, stress without a periodic cell, invalid or unexpected
    elements, empty frames, unknown format.

    >>> structures = read_structures("train.extxyz", LabelSpec(energy_key="dft_energy"))  # doctest: +SKIP
    """
    structures, _ = read_structures_with_summary(path, labels, format=format, species=species)
    return structures
