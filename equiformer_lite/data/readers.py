"""Read training structures from files into :class:`ase.Atoms` with labels in eV, Å, eV/Å, eV/Å³.

Formats
-------
* anything :func:`ase.io.read` reads, extended XYZ first; compressed files (``x.extxyz.gz``,
  ``.bz2``, ``.xz``) are opened by ASE transparently. ASE stores its labels in eV and Å.
* ASE databases (``.db``, ASE ``.json``), read row by row with :func:`ase.db.connect` so that
  labels kept in a row's key-value pairs or ``data`` are reachable by key as well.
* ``.npz`` in the MD17/sGDML layout: ``R [frames, atoms, 3]``, ``z [atoms]``, ``E [frames]`` or
  ``[frames, 1]``, ``F [frames, atoms, 3]`` (the revised-MD17 names ``coords``,
  ``nuclear_charges``, ``energies``, ``forces`` too), optional ``lattice [3, 3]``. These files
  are in kcal/mol and kcal/mol/Å unless they declare ``e_unit``/``r_unit``.
* HDF5 in the ANI layout: groups (nested or not) holding ``species`` (element symbols) or
  ``atomic_numbers``, ``coordinates [frames, atoms, 3]``, ``energies [frames]`` (Hartree) and
  optionally ``forces [frames, atoms, 3]`` (Hartree/Å). Needs the optional dependency h5py.

Every returned structure carries its labels in a :class:`SinglePointCalculator` under the
standard keys (``energy``, ``forces``, ``stress``, and ``energies`` for per-atom energies when
the frames have them under that ASE name), so :func:`~equiformer_lite.data.read_labels`
and :func:`~equiformer_lite.data.atoms_to_graph` find them with their default keys. The units
assumed are logged and returned in a :class:`ReadSummary`: a wrong unit or key is the kind of
error that trains a model on nothing ("zero loss" runs), so it is never left implicit.
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import io
import logging
import lzma
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional, Sequence, Union

import numpy as np
import torch
from ase import Atoms, units
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import atomic_numbers
from ase.stress import full_3x3_to_voigt_6_stress

from . import keys
from .graph import read_labels, validate_atoms
from .species import check_elements, parse_species

__all__ = [
    "ReadSummary",
    "read_structures",
    "read_structures_with_summary",
    "resolve_format",
    "validate_structures",
    "ENERGY_UNITS",
    "LENGTH_UNITS",
]

logger = logging.getLogger(__name__)

PathLike = Union[str, Path]
LABELS = (keys.ENERGY, keys.FORCES, keys.STRESS)

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

_COMPRESSION_SUFFIXES = (".gz", ".bz2", ".xz")


@dataclass(frozen=True)
class ReadSummary:
    """What was read from a file, and in which units it was read.

    Attributes
    ----------
    path, format : the file and the reader used (``"npz"``, ``"hdf5"``, ``"db"`` or an ASE format).
    num_structures : frames read.
    label_keys : label (``energy``/``forces``/``stress``/``atomic_energies``) -> name it had in
        the file, for the labels present.
    energy_unit, length_unit : units of the file; labels were converted to eV, Å, eV/Å, eV/Å³.
    energy_factor, length_factor : size of one file unit in eV and in Å.
    unit_source : why these units (given as argument, declared by the file, format default).
    """

    path: str
    format: str
    num_structures: int
    label_keys: dict[str, str] = field(default_factory=dict)
    energy_unit: str = "eV"
    length_unit: str = "Å"
    energy_factor: float = 1.0
    length_factor: float = 1.0
    unit_source: str = "ASE convention"

    def describe(self) -> str:
        """One line for the log: keys, units and conversions."""
        e, l_ = self.energy_unit, self.length_unit
        converted = {
            keys.ENERGY: f"{e} -> eV",
            keys.FORCES: f"{e}/{l_} -> eV/Å",
            keys.STRESS: f"{e}/{l_}^3 -> eV/Å^3",
            keys.ATOMIC_ENERGIES: f"{e} -> eV",
        }
        labels = ", ".join(f"{label} from '{key}' [{converted[label]}]" for label, key in self.label_keys.items())
        return (
            f"{self.path} ({self.format}): {self.num_structures} structures; "
            f"{labels or 'no labels'}; positions [{l_} -> Å]; "
            f"units: {self.unit_source} (1 {e} = {self.energy_factor:.10g} eV, 1 {l_} = {self.length_factor:.10g} Å)"
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain types only (str, int, float, dict), safe for ``torch.load(weights_only=True)``."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "ReadSummary":
        return cls(**values)


@dataclass
class _Raw:
    """Frames as read, before validation and unit conversion."""

    structures: list[Atoms]
    frame_names: list[str]
    read_keys: dict[str, Optional[str]]  # label -> key to look up in the Atoms
    file_keys: dict[str, str]  # label -> name in the file, for the summary
    energy_unit: str
    length_unit: str
    unit_source: str


# --- units and formats -----------------------------------------------------------------------------


def _unit(name: str, table: dict[str, tuple[str, float]], kind: str) -> tuple[str, float]:
    try:
        return table[name.strip().lower()]
    except (KeyError, AttributeError):
        known = sorted({canonical for canonical, _ in table.values()})
        raise ValueError(f"unknown {kind} unit {name!r}; known: {known}") from None


def resolve_format(path: PathLike, format: Optional[str] = None) -> str:
    """The reader for ``path``: ``"npz"``, ``"hdf5"``, ``"db"`` or an :mod:`ase.io` format name.

    ``format`` may name a layout (``"md17"``/``"sgdml"``/``"npz"``, ``"ani"``/``"hdf5"``/``"h5"``,
    ``"db"``) or any ASE format. Without it the suffix decides, then ASE's content sniffing.
    """
    from ase.io.formats import filetype, ioformats

    aliases = {"npz": "npz", "md17": "npz", "sgdml": "npz", "hdf5": "hdf5", "h5": "hdf5", "ani": "hdf5"}
    aliases.update({"db": "db", "ase-db": "db", "json": "db"})
    if format is not None:
        name = format.lower()
        if name in aliases:
            return aliases[name]
        if name in ioformats:
            return name
        raise ValueError(f"unknown format {format!r}: use 'md17', 'ani', 'db' or an ase.io format name")
    name = Path(path).name.lower()
    stem = name
    for suffix in _COMPRESSION_SUFFIXES:
        stem = stem.removesuffix(suffix)
    suffix = Path(stem).suffix
    if suffix in (".npz", ".h5", ".hdf5", ".db", ".json") and stem == name:
        return aliases[suffix[1:]]
    try:
        fmt = filetype(str(path), guess=True)
    except Exception as err:  # ASE raises several types for unknown content
        raise ValueError(f"cannot tell the format of {path} ({err}); pass format=...") from err
    return aliases.get(fmt, fmt)


# --- validation shared by every reader and by in-memory structures ---------------------------------


def _keys_present(atoms: Atoms) -> str:
    arrays = sorted(k for k in atoms.arrays if k not in ("numbers", "positions"))
    results = sorted(atoms.calc.results) if isinstance(atoms.calc, SinglePointCalculator) else []
    return f"info {sorted(atoms.info)}, arrays {arrays}, calculator results {results}"


def validate_structures(
    structures: Sequence[Atoms],
    *,
    energy_key: Optional[str] = "energy",
    forces_key: Optional[str] = "forces",
    stress_key: Optional[str] = "stress",
    require: Sequence[str] = ("energy",),
    species: Optional[Sequence[str]] = None,
    source: str = "structures",
    frame_names: Optional[Sequence[str]] = None,
) -> list[dict[str, np.ndarray]]:
    """Validate structures and their labels, naming the source and frame of any problem.

    Each structure goes through :func:`~equiformer_lite.data.validate_atoms` (empty frames,
    non-finite positions, invalid elements, degenerate cells) and
    :func:`~equiformer_lite.data.read_labels` (label shapes, NaN/inf, stress without a periodic
    cell). On top of those, across frames:

    * a required label must be in every frame; the error lists the keys that *are* present;
    * energy and forces asked for under a non-default key must be in every frame, and when
      present in some frames, in all (a batch cannot mix them);
    * stress may be in some frames only (molecules next to crystals): the data set pads the
      others with a zero stress of weight 0 (see :func:`~equiformer_lite.data.graph.pad_missing_stress`);
      asked for under a non-default key, it must be in at least one frame;
    * forces that are exactly zero in every frame with more than one atom are rejected: that
      is a wrong key or unit, not physics (single atoms legitimately have zero force);
    * elements outside ``species``, when given.

    A key of ``None`` skips that label.

    Returns
    -------
    list of label dicts, one per structure, in the file's units (see :func:`read_labels`).
    """
    for label in require:
        if label not in LABELS:
            raise ValueError(f"require contains {label!r}; allowed labels are {list(LABELS)}")
    label_keys = {keys.ENERGY: energy_key, keys.FORCES: forces_key, keys.STRESS: stress_key}
    for label in require:
        if label_keys[label] is None:
            raise ValueError(f"{label!r} is required but its key is None")
    names = list(frame_names) if frame_names is not None else [f"frame {i}" for i in range(len(structures))]
    if species is not None:
        species = parse_species(species)

    all_labels: list[dict[str, np.ndarray]] = []
    for atoms, name in zip(structures, names):
        try:
            validate_atoms(atoms)
            labels = read_labels(
                atoms,
                energy_key=energy_key,  # type: ignore[arg-type]  # None is simply never found
                forces_key=forces_key,  # type: ignore[arg-type]
                stress_key=stress_key,  # type: ignore[arg-type]
            )
        except ValueError as err:
            raise ValueError(f"{source}, {name}: {err}") from err
        labels = {k: v for k, v in labels.items() if label_keys.get(k, k) is not None}
        if species is not None:
            check_elements(torch.as_tensor(atoms.numbers), species, f"{source}, {name}")
        all_labels.append(labels)

    # A label under a non-default key (the default key is the label's own name) was asked for.
    requested = set(require) | {label for label, key in label_keys.items() if key not in (None, label)}
    for label, key in label_keys.items():
        missing = [i for i, labels in enumerate(all_labels) if label not in labels]
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

    missing = [names[i] for i, labels in enumerate(all_labels) if keys.ATOMIC_ENERGIES not in labels]
    if 0 < len(missing) < len(all_labels):
        raise ValueError(
            f"{source}: per-atom energies (key 'energies') are present in {len(all_labels) - len(missing)} of "
            f"{len(all_labels)} frames but missing in frames {missing[:10]}: every frame must have them or none"
        )

    with_forces = [labels[keys.FORCES] for labels in all_labels if keys.FORCES in labels]
    many = [f for f in with_forces if len(f) > 1]
    if many and all(not f.any() for f in many):
        raise ValueError(
            f"{source}: forces (key {forces_key!r}) are exactly zero in every frame with more than one "
            f"atom ({len(many)} frames): most likely a wrong key or unit. Pass forces_key=... for the "
            "right key, or forces_key=None to train without forces."
        )
    return all_labels


# --- readers -----------------------------------------------------------------------------------------


def _read_ase(path: Path, fmt: str, label_keys: dict[str, Optional[str]]) -> _Raw:
    import ase.io
    from ase.io.formats import ioformats

    source: Any = path
    compression = path.suffix.lower()
    if compression in _COMPRESSION_SUFFIXES and fmt in ioformats and ioformats[fmt].code[1] in "FB":
        # Reading all frames of a compressed file, ASE seeks back in the stream, which
        # decompresses again from the start each time: quadratic (minutes for a few thousand
        # frames). Decompressing once into memory makes it linear.
        opener = {".gz": gzip.open, ".bz2": bz2.open, ".xz": lzma.open}[compression]
        binary = ioformats[fmt].code[1] == "B"
        with opener(path, "rb" if binary else "rt") as fh:
            source = io.BytesIO(fh.read()) if binary else io.StringIO(fh.read())
    try:
        structures = ase.io.read(source, index=":", format=fmt)
    except Exception as err:  # ASE parsers raise many types; name the file
        raise ValueError(f"{path}: ASE could not read it as format {fmt!r}: {err}") from err
    if isinstance(structures, Atoms):
        structures = [structures]
    names = [f"frame {i}" for i in range(len(structures))]
    file_keys = {k: v for k, v in label_keys.items() if v is not None}
    return _Raw(list(structures), names, dict(label_keys), file_keys, "eV", "Å", "ASE convention")


def _read_db(path: Path, label_keys: dict[str, Optional[str]]) -> _Raw:
    import ase.db

    import sqlite3

    try:
        rows = list(ase.db.connect(str(path)).select())
    except (sqlite3.DatabaseError, ValueError, KeyError) as err:  # not SQLite, or not ASE's tables
        raise ValueError(f"{path}: not a readable ASE database ({type(err).__name__}: {err})") from err
    structures, names = [], []
    for row in rows:
        atoms = row.toatoms()  # calculator results: energy, forces, stress
        # Custom labels live in the row's key-value pairs and data; expose them by key.
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
    file_keys = {k: v for k, v in label_keys.items() if v is not None}
    return _Raw(structures, names, dict(label_keys), file_keys, "eV", "Å", "ASE convention")


def _resolve_key(available: Sequence[str], label: str, requested: Optional[str], alternatives: Sequence[str]):
    """``requested`` if the file has it; the layout's names for a label left at its default key."""
    if requested is None:
        return None
    if requested in available:
        return requested
    if requested == label:
        return next((alt for alt in alternatives if alt in available), None)
    return None


def _resolve_keys(available, label_keys: dict[str, Optional[str]], alternatives: dict[str, Sequence[str]]):
    return {label: _resolve_key(available, label, key, alternatives[label]) for label, key in label_keys.items()}


def _check_keys(
    where: str,
    available: Sequence[str],
    label_keys: dict[str, Optional[str]],
    found: dict[str, Optional[str]],
    alternatives: dict[str, Sequence[str]],
    require: Sequence[str],
) -> None:
    """A required label, or one asked for under a non-default key, must be found in the file."""
    for label, key in label_keys.items():
        asked = label in require or key not in (None, label)
        if asked and found.get(label) is None:
            tried = [key] + (list(alternatives.get(label, ())) if key == label else [])
            raise ValueError(
                f"{where}: {label} label not found (tried keys {tried}); arrays present: "
                f"{sorted(available)}. Pass {label}_key=..."
                + (" or drop it from require." if label in require else ".")
            )


def _expect_shape(where: str, name: str, array: np.ndarray, shapes: Sequence[tuple], note: str = "") -> None:
    shapes = [tuple(s) for s in shapes]
    if array.shape not in shapes:
        text = " or ".join(str(s) for s in shapes)
        raise ValueError(f"{where}: array '{name}' must have shape {text}{note}, got {array.shape}")


def _frames_from_arrays(
    where: str,
    names: dict[str, str],
    get,
    numbers: np.ndarray,
    cell: Optional[np.ndarray],
) -> tuple[list[Atoms], int]:
    """Atoms of every frame from positions [F, N, 3], numbers [N] or [F, N] and label arrays."""
    pos = np.asarray(get(names["positions"]), dtype=np.float64)
    if pos.ndim != 3 or pos.shape[2] != 3:
        name = names["positions"]
        raise ValueError(f"{where}: array '{name}' must have shape (frames, atoms, 3), got {pos.shape}")
    n_frames, n_atoms = pos.shape[:2]
    _expect_shape(where, names["numbers"], numbers, [(n_atoms,), (n_frames, n_atoms)])
    labels: dict[str, np.ndarray] = {}
    if names.get(keys.ENERGY):
        e = np.asarray(get(names[keys.ENERGY]), dtype=np.float64)
        _expect_shape(where, names[keys.ENERGY], e, [(n_frames,), (n_frames, 1)])
        labels[keys.ENERGY] = e.reshape(n_frames)
    if names.get(keys.FORCES):
        f = np.asarray(get(names[keys.FORCES]), dtype=np.float64)
        _expect_shape(where, names[keys.FORCES], f, [pos.shape], " like the positions")
        labels[keys.FORCES] = f
    if names.get(keys.STRESS):
        s = np.asarray(get(names[keys.STRESS]), dtype=np.float64)
        _expect_shape(where, names[keys.STRESS], s, [(n_frames, 3, 3), (n_frames, 6)])
        labels[keys.STRESS] = s
    numbers = np.broadcast_to(numbers, (n_frames, n_atoms))
    frames = []
    for i in range(n_frames):
        atoms = Atoms(numbers=numbers[i], positions=pos[i], cell=cell, pbc=cell is not None)
        if keys.ENERGY in labels:
            atoms.info[keys.ENERGY] = labels[keys.ENERGY][i]
        if keys.FORCES in labels:
            atoms.new_array(keys.FORCES, labels[keys.FORCES][i])
        if keys.STRESS in labels:
            atoms.info[keys.STRESS] = labels[keys.STRESS][i]
        frames.append(atoms)
    return frames, n_frames


def _read_npz(path: Path, label_keys: dict[str, Optional[str]], require: Sequence[str]) -> _Raw:
    alternatives = {keys.ENERGY: ("E", "energies"), keys.FORCES: ("F", "forces"), keys.STRESS: ()}
    with np.load(path, allow_pickle=False) as npz:
        available = list(npz.files)
        where = str(path)
        found = _resolve_keys(available, label_keys, alternatives)
        _check_keys(where, available, label_keys, found, alternatives, require)
        names = {label: key for label, key in found.items() if key is not None}
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
            _expect_shape(where, "lattice", cell, [(3, 3)])
        frames, n_frames = _frames_from_arrays(where, names, lambda k: npz[k], numbers, cell)
        declared = {u: _as_str(npz[u].item()) for u in ("e_unit", "r_unit") if u in available}
    file_keys = {label: names[label] for label in LABELS if label in names}
    energy_unit = declared.get("e_unit", "kcal/mol")
    length_unit = declared.get("r_unit", "Å")
    source = "declared by the file (e_unit/r_unit)" if declared else "MD17/sGDML default (kcal/mol, Å)"
    frame_names = [f"frame {i}" for i in range(n_frames)]
    read_keys = {label: (label if label in names else None) for label in LABELS}
    return _Raw(frames, frame_names, read_keys, file_keys, energy_unit, length_unit, source)


def _as_str(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _import_h5py():
    try:
        import h5py
    except ImportError as err:
        raise ImportError(
            "reading HDF5 (ANI layout) needs h5py, an optional dependency: pip install h5py"
        ) from err
    return h5py


def _read_hdf5(path: Path, label_keys: dict[str, Optional[str]], require: Sequence[str]) -> _Raw:
    h5py = _import_h5py()
    alternatives = {keys.ENERGY: ("energies",), keys.FORCES: (), keys.STRESS: ()}
    frames: list[Atoms] = []
    frame_names: list[str] = []
    file_keys: dict[str, str] = {}
    with h5py.File(path, "r") as h5:
        groups = [h5] if "coordinates" in h5 else []
        h5.visititems(lambda _, obj: groups.append(obj) if _is_ani_group(h5py, obj) else None)
        if not groups:
            raise ValueError(f"{path}: no group holds a 'coordinates' dataset (ANI layout)")
        for group in groups:
            where = f"{path}, group '{group.name}'"
            available = list(group.keys())
            found = _resolve_keys(available, label_keys, alternatives)
            _check_keys(where, available, label_keys, found, alternatives, require)
            names = {label: key for label, key in found.items() if key is not None}
            names["positions"] = "coordinates"
            names["numbers"] = next((k for k in ("species", "atomic_numbers") if k in available), "")
            if not names["numbers"]:
                raise ValueError(
                    f"{where}: neither 'species' nor 'atomic_numbers'; datasets present: {sorted(available)}"
                )
            numbers = _ani_numbers(where, names["numbers"], group[names["numbers"]][()])
            group_frames, n = _frames_from_arrays(where, names, lambda k: group[k][()], numbers, None)
            frames += group_frames
            frame_names += [f"group '{group.name}' frame {i}" for i in range(n)]
            file_keys.update({label: names[label] for label in LABELS if label in names})
    read_keys = {label: (label if label in file_keys else None) for label in LABELS}
    return _Raw(frames, frame_names, read_keys, file_keys, "Hartree", "Å", "ANI default (Hartree, Å)")


def _is_ani_group(h5py, obj) -> bool:
    return isinstance(obj, h5py.Group) and "coordinates" in obj


def _ani_numbers(where: str, name: str, values: np.ndarray) -> np.ndarray:
    values = np.asarray(values)
    if values.dtype.kind in "iu":
        return values.astype(np.int64)
    symbols = [_as_str(v) for v in values.reshape(-1)]
    unknown = sorted({s for s in symbols if s not in atomic_numbers})
    if unknown:
        raise ValueError(f"{where}: unknown element symbol(s) {unknown} in '{name}'")
    return np.array([atomic_numbers[s] for s in symbols], dtype=np.int64).reshape(values.shape)


# --- public entry points -----------------------------------------------------------------------------


def _to_standard(atoms: Atoms, labels: dict[str, np.ndarray], read_keys: dict, energy: float, length: float) -> None:
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
    if keys.ENERGY in labels:
        results["energy"] = float(labels[keys.ENERGY][0]) * energy
    if keys.FORCES in labels:
        results["forces"] = labels[keys.FORCES] * (energy / length)
    if keys.STRESS in labels:
        results["stress"] = full_3x3_to_voigt_6_stress(labels[keys.STRESS][0]) * (energy / length**3)
    if keys.ATOMIC_ENERGIES in labels:
        results["energies"] = labels[keys.ATOMIC_ENERGIES] * energy
    atoms.calc = SinglePointCalculator(atoms, **results) if results else None


def read_structures_with_summary(
    path: PathLike,
    *,
    format: Optional[str] = None,
    energy_key: Optional[str] = "energy",
    forces_key: Optional[str] = "forces",
    stress_key: Optional[str] = "stress",
    energy_unit: Optional[str] = None,
    length_unit: Optional[str] = None,
    require: Sequence[str] = ("energy",),
    species: Optional[Sequence[str]] = None,
) -> tuple[list[Atoms], ReadSummary]:
    """:func:`read_structures`, also returning the :class:`ReadSummary` of keys and units."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    fmt = resolve_format(path, format)
    label_keys = {keys.ENERGY: energy_key, keys.FORCES: forces_key, keys.STRESS: stress_key}
    if fmt == "npz":
        raw = _read_npz(path, label_keys, require)
    elif fmt == "hdf5":
        raw = _read_hdf5(path, label_keys, require)
    elif fmt == "db":
        raw = _read_db(path, label_keys)
    else:
        raw = _read_ase(path, fmt, label_keys)
    if not raw.structures:
        raise ValueError(f"{path}: no structures found")

    source = raw.unit_source
    if energy_unit is not None or length_unit is not None:
        source = "given as argument" + (f" (the rest: {raw.unit_source})" if None in (energy_unit, length_unit) else "")
    e_name, e_factor = _unit(energy_unit or raw.energy_unit, ENERGY_UNITS, "energy")
    l_name, l_factor = _unit(length_unit or raw.length_unit, LENGTH_UNITS, "length")

    all_labels = validate_structures(
        raw.structures,
        energy_key=raw.read_keys[keys.ENERGY],
        forces_key=raw.read_keys[keys.FORCES],
        stress_key=raw.read_keys[keys.STRESS],
        require=require,
        species=species,
        source=str(path),
        frame_names=raw.frame_names,
    )
    for atoms, labels in zip(raw.structures, all_labels):
        _to_standard(atoms, labels, raw.read_keys, e_factor, l_factor)
    present = {label for labels in all_labels for label in labels}
    summary = ReadSummary(
        path=str(path),
        format=fmt,
        num_structures=len(raw.structures),
        label_keys={
            **{label: raw.file_keys[label] for label in LABELS if label in present},
            **({keys.ATOMIC_ENERGIES: "energies"} if keys.ATOMIC_ENERGIES in present else {}),
        },
        energy_unit=e_name,
        length_unit=l_name,
        energy_factor=e_factor,
        length_factor=l_factor,
        unit_source=source,
    )
    logger.info("read %s", summary.describe())
    assumed = (energy_unit is None and e_factor != 1.0) or (length_unit is None and l_factor != 1.0)
    if assumed and "default" in raw.unit_source:
        logger.warning(
            "%s: assuming %s and %s (%s); pass energy_unit=/length_unit= if the file differs",
            path, e_name, l_name, source,
        )
    return raw.structures, summary


def read_structures(
    path: PathLike,
    *,
    format: Optional[str] = None,
    energy_key: Optional[str] = "energy",
    forces_key: Optional[str] = "forces",
    stress_key: Optional[str] = "stress",
    energy_unit: Optional[str] = None,
    length_unit: Optional[str] = None,
    require: Sequence[str] = ("energy",),
    species: Optional[Sequence[str]] = None,
) -> list[Atoms]:
    """Read labelled structures from a file, in eV, Å, eV/Å and eV/Å³.

    Parameters
    ----------
    path : file to read (see the module docstring for the formats).
    format : reader or ASE format name; guessed from the suffix and content when None.
    energy_key, forces_key, stress_key : where the labels are: keys of ``atoms.info``,
        ``atoms.arrays`` or the calculator results (ASE formats, a database row's key-value pairs
        or data), or array names (npz, HDF5; left at the defaults, the layout's own names ``E``/``F``
        or ``energies`` are used). ``None`` skips a label. A non-default key that is not found
        is an error even for a label not in ``require``.
    energy_unit, length_unit : units of the file, e.g. ``"kcal/mol"``, ``"Hartree"``, ``"Bohr"``
        (see :data:`ENERGY_UNITS`, :data:`LENGTH_UNITS`). Default: eV and Å for ASE files (ASE's
        convention), what an sGDML file declares or kcal/mol and Å for npz, Hartree and Å for ANI
        HDF5. Forces are read in energy/length, stress in energy/length³. Only positions, cell
        and labels are converted.
    require : labels every frame must have.
    species : if given, elements outside it are an error.

    Returns
    -------
    list of :class:`ase.Atoms`, labels in a :class:`SinglePointCalculator` under ``energy``
    (eV), ``forces`` ``[N, 3]`` (eV/Å), ``stress`` (Voigt ``[6]``, eV/Å³) and, when the file
    has them under ``energies``, per-atom energies ``[N]`` (eV). The units
    assumed are logged; :func:`read_structures_with_summary` returns them too.

    Raises
    ------
    ValueError naming the file and frame: missing labels (listing the keys present), wrong
    shapes, NaN/inf, all-zero forces, stress without a periodic cell, invalid or unexpected
    elements, empty frames, unknown units or format.

    >>> structures = read_structures("train.extxyz", energy_key="dft_energy")  # doctest: +SKIP
    """
    structures, _ = read_structures_with_summary(
        path,
        format=format,
        energy_key=energy_key,
        forces_key=forces_key,
        stress_key=stress_key,
        energy_unit=energy_unit,
        length_unit=length_unit,
        require=require,
        species=species,
    )
    return structures
