"""Where a data source keeps its labels, and in which units: :class:`LabelSpec`.

One small value travels from the run config (``data.energy_key``, ``data.energy_unit``, ...)
through :class:`~equiformer_lite.data.AtomicDataset` to the readers and
:func:`~equiformer_lite.data.read_labels`, instead of one keyword argument per key and unit.

Units are ASE's inside the package: energies in eV, lengths in Å, forces in eV/Å, stress in
eV/Å³. A file in other units declares them with ``energy_unit``/``length_unit``; forces are then
read in energy/length and stress in energy/length³ (see :data:`ENERGY_UNITS`, :data:`LENGTH_UNITS`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Optional, Sequence

from ase import units

from . import keys

__all__ = ["LabelSpec", "DEFAULT_LABELS", "LABELS", "ENERGY_UNITS", "LENGTH_UNITS", "check_label_spec", "unit_size"]

LABELS = (keys.ENERGY, keys.FORCES, keys.STRESS)  # the labels a file may be required to have

# Canonical name and size in ASE units (eV, Å); looked up case-insensitively.
ENERGY_UNITS: dict[str, tuple[str, float]] = {
    "ev": ("eV", 1.0),
    "mev": ("meV", 1e-3),
    "hartree": ("Hartree", units.Hartree),
    "ha": ("Hartree", units.Hartree),
    "kcal/mol": ("kcal/mol", units.kcal / units.mol),
    "kj/mol": ("kJ/mol", units.kJ / units.mol),
    "ry": ("Ry", units.Ry),
    "rydberg": ("Ry", units.Ry),
}
LENGTH_UNITS: dict[str, tuple[str, float]] = {
    "å": ("Å", 1.0),
    "a": ("Å", 1.0),
    "ang": ("Å", 1.0),
    "angstrom": ("Å", 1.0),
    "bohr": ("Bohr", units.Bohr),
    "nm": ("nm", units.nm),
}
_UNIT_TABLES = {"energy": ENERGY_UNITS, "length": LENGTH_UNITS}


def unit_size(name: str, kind: str) -> tuple[str, float]:
    """Canonical name and size in eV (``kind="energy"``) or Å (``kind="length"``) of a unit name."""
    table = _UNIT_TABLES[kind]
    try:
        return table[name.strip().lower()]
    except (KeyError, AttributeError):
        known = sorted({canonical for canonical, _ in table.values()})
        raise ValueError(f"unknown {kind} unit {name!r}; known: {known}") from None


@dataclass(frozen=True)
class LabelSpec:
    """The label keys, units and required labels of a data source.

    Attributes
    ----------
    energy_key, forces_key, stress_key : where the total energy, forces ``[N, 3]`` and stress
        (Voigt ``[6]`` or ``[3, 3]``) are: keys of ``atoms.info``, ``atoms.arrays`` or a
        single-point calculator's results (ASE files and databases), or array names (npz, HDF5;
        left at the defaults, a layout's own names such as MD17's ``E``/``F`` are used).
        ``None`` leaves a label out. A key other than the label's own name must be found.
    atomic_energies_key : per-atom energies ``[N]`` (ASE's ``energies``); ``None`` skips them.
    energy_unit, length_unit : units of the file, e.g. ``"kcal/mol"``, ``"Hartree"``, ``"Bohr"``.
        ``None``: the format's convention (eV and Å for ASE files, kcal/mol and Å for MD17 npz,
        Hartree and Å for ANI HDF5). Only files are converted; in-memory structures must
        already be in eV and Å.
    require : labels every structure must have (a subset of :data:`LABELS`).

    >>> LabelSpec(energy_key="REF_energy", forces_key="REF_forces").label_keys["energy"]
    'REF_energy'
    >>> LabelSpec(forces_key=None, require=["forces"])
    Traceback (most recent call last):
    ...
    ValueError: require names 'forces' but forces_key is None: give its key or drop it from require
    """

    energy_key: Optional[str] = "energy"
    forces_key: Optional[str] = "forces"
    stress_key: Optional[str] = "stress"
    atomic_energies_key: Optional[str] = "energies"
    energy_unit: Optional[str] = None
    length_unit: Optional[str] = None
    require: tuple[str, ...] = (keys.ENERGY,)

    def __post_init__(self) -> None:
        for name in ("energy_key", "forces_key", "stress_key", "atomic_energies_key"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, str) or not value.strip()):
                raise ValueError(f"{name} must be a non-empty string or None, got {value!r}")
        for kind in ("energy", "length"):
            value = getattr(self, f"{kind}_unit")
            if value is not None:
                unit_size(value, kind)  # raises naming the known units
        require = self.require
        if isinstance(require, str) or not isinstance(require, Sequence):
            raise ValueError(f"require must be a list of labels out of {list(LABELS)}, got {require!r}")
        for label in require:
            if label not in LABELS:
                raise ValueError(f"require contains {label!r}; allowed labels are {list(LABELS)}")
            if self.label_keys[label] is None:
                raise ValueError(f"require names {label!r} but {label}_key is None: give its key or drop it from require")
        object.__setattr__(self, "require", tuple(require))

    @property
    def label_keys(self) -> dict[str, Optional[str]]:
        """Energy, forces and stress label -> key to look them up under (``None``: left out)."""
        return {keys.ENERGY: self.energy_key, keys.FORCES: self.forces_key, keys.STRESS: self.stress_key}

    @property
    def has_units(self) -> bool:
        """Whether a unit was given (in-memory structures take none)."""
        return self.energy_unit is not None or self.length_unit is not None

    def replace(self, **changes: Any) -> "LabelSpec":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (for cache keys and logs)."""
        values = dataclasses.asdict(self)
        values["require"] = sorted(self.require)
        return values


DEFAULT_LABELS = LabelSpec()


def check_label_spec(labels: Any) -> LabelSpec:
    """``labels`` if it is a :class:`LabelSpec`; a TypeError naming what it is otherwise."""
    if not isinstance(labels, LabelSpec):
        raise TypeError(f"labels must be a LabelSpec, got {type(labels).__name__}")
    return labels
