"""Read training structures from files into :class:`ase.Atoms` with labels in eV, Å, eV/Å, eV/Å³.

Formats, one module each, behind a registry (:func:`register_reader` adds one):

* :mod:`.ase_files`: anything :func:`ase.io.read` reads, extended XYZ first, compressed
  (``.gz``, ``.bz2``, ``.xz``) too; eV and Å. The fallback for every format no reader claims.
* :mod:`.ase_db`: ASE databases (``.db``, ASE ``.json``), labels in key-value pairs and ``data`` too.
* :mod:`.npz`: the MD17/sGDML layout (kcal/mol and Å unless the file declares its units).
* :mod:`.ani_hdf5`: the ANI HDF5 layout (Hartree and Å; needs h5py).

Where the labels are and in which units comes in one :class:`~equiformer_lite.data.LabelSpec`.
Every returned structure carries its labels in a :class:`SinglePointCalculator` under the
standard keys (``energy``, ``forces``, ``stress``, and ``energies`` for per-atom energies), so
:func:`~equiformer_lite.data.read_labels` and :func:`~equiformer_lite.data.atoms_to_graph`
find them with the default spec. The units assumed are logged and returned in a
:class:`ReadSummary`: a wrong unit or key is the kind of error that trains a model on nothing
("zero loss" runs), so it is never left implicit.
"""

from ..labels import ENERGY_UNITS, LENGTH_UNITS
from . import ani_hdf5, ase_db, npz  # noqa: F401  (each registers its reader)
from .base import RawFrames, Reader, ReadSummary, register_reader, registered_readers, resolve_format
from .read import read_structures, read_structures_with_summary
from .validate import validate_structures

__all__ = [
    "ReadSummary",
    "RawFrames",
    "Reader",
    "register_reader",
    "registered_readers",
    "read_structures",
    "read_structures_with_summary",
    "resolve_format",
    "validate_structures",
    "ENERGY_UNITS",
    "LENGTH_UNITS",
]
