"""Data path: keys, neighbour lists, and ASE -> torch-geometric conversion."""

from . import keys
from .graph import DEFAULT_MIN_DISTANCE, atoms_to_batch, atoms_to_graph, read_labels, validate_atoms
from .neighborlist import neighbor_list

__all__ = [
    "keys",
    "neighbor_list",
    "atoms_to_graph",
    "atoms_to_batch",
    "read_labels",
    "validate_atoms",
    "DEFAULT_MIN_DISTANCE",
]
