"""Data path: keys, neighbour lists, and ASE -> torch-geometric conversion."""

from . import keys
from .dataset import AtomicDataset, default_cache_dir, load_split_indices, split_indices
from .labels import DEFAULT_LABELS, LabelSpec
from .graph import DEFAULT_MIN_DISTANCE, atoms_to_batch, atoms_to_graph, read_labels, validate_atoms
from .neighborlist import SkinNeighborList, neighbor_list
from .readers import ReadSummary, Reader, read_structures, read_structures_with_summary, register_reader, validate_structures
from .statistics import DatasetStatistics, compute_statistics, fit_atomic_energies

__all__ = [
    "keys",
    "neighbor_list",
    "SkinNeighborList",
    "atoms_to_graph",
    "atoms_to_batch",
    "read_labels",
    "validate_atoms",
    "DEFAULT_MIN_DISTANCE",
    "read_structures",
    "read_structures_with_summary",
    "validate_structures",
    "ReadSummary",
    "Reader",
    "register_reader",
    "LabelSpec",
    "DEFAULT_LABELS",
    "AtomicDataset",
    "default_cache_dir",
    "split_indices",
    "load_split_indices",
    "fit_atomic_energies",
    "compute_statistics",
    "DatasetStatistics",
]
