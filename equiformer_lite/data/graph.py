"""Convert :class:`ase.Atoms` into torch-geometric graphs, validating everything on the way."""

from __future__ import annotations

from typing import Iterable, Optional, Sequence

import numpy as np
import torch
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.data import chemical_symbols
from ase.stress import voigt_6_to_full_3x3_stress
from torch_geometric.data import Batch, Data

from . import keys
from .labels import DEFAULT_LABELS, LabelSpec, check_label_spec
from .neighborlist import SkinNeighborList, edge_vectors, neighbor_list

__all__ = [
    "atoms_to_graph",
    "atoms_to_batch",
    "pad_missing_stress",
    "read_labels",
    "validate_atoms",
    "DEFAULT_MIN_DISTANCE",
]

DEFAULT_MIN_DISTANCE = 0.1  # Å; closer pairs are treated as overlapping atoms, an input error


def validate_atoms(atoms: Atoms) -> None:
    """Raise :class:`ValueError` for a structure no potential can be evaluated on."""
    if not isinstance(atoms, Atoms):
        raise TypeError(f"expected ase.Atoms, got {type(atoms).__name__}")
    if len(atoms) == 0:
        raise ValueError("empty structure: the Atoms object has no atoms")
    pos = atoms.get_positions()
    if not np.isfinite(pos).all():
        bad = np.flatnonzero(~np.isfinite(pos).all(axis=1))
        raise ValueError(f"positions of atoms {bad.tolist()[:10]} are not finite (NaN or inf)")
    numbers = atoms.get_atomic_numbers()
    if (numbers <= 0).any() or (numbers >= len(chemical_symbols)).any():
        raise ValueError(f"invalid atomic numbers {sorted(set(numbers.tolist()))}: each must lie in 1..118")
    if atoms.pbc.any():
        cell = atoms.cell.array
        if not np.isfinite(cell).all():
            raise ValueError("the cell is not finite (NaN or inf)")
        if abs(np.linalg.det(cell)) < 1e-8:
            raise ValueError(
                f"pbc={atoms.pbc.tolist()} needs a cell of three independent lattice vectors, "
                f"got cell={cell.tolist()} (volume {abs(np.linalg.det(cell)):.3g} Å^3)"
            )


def _label_source(atoms: Atoms, key: Optional[str]):
    """The value stored under ``key`` in atoms.info, atoms.arrays or a single-point calculator
    (None for a key of None)."""
    if key is None:
        return None
    if key in atoms.info:
        return atoms.info[key]
    if key in atoms.arrays:
        return atoms.arrays[key]
    calc = atoms.calc
    if isinstance(calc, SinglePointCalculator) and key in calc.results:
        return calc.results[key]
    return None


def _numbers(value, what: str, key: str) -> np.ndarray:
    """``value`` as float64, or a ValueError that names the label, its key and the bad value."""
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as err:
        shown = repr(value) if len(repr(value)) <= 60 else repr(value)[:57] + "..."
        raise ValueError(f"{what} label '{key}' must be numbers, got {shown} ({err})") from None


def read_labels(atoms: Atoms, labels: LabelSpec = DEFAULT_LABELS) -> dict[str, np.ndarray]:
    """Read and validate energy (eV), forces (eV/Å), stress (eV/Å³) and per-atom energy (eV) labels.

    Labels are looked up under the keys of ``labels`` in ``atoms.info``, ``atoms.arrays`` and a
    single-point calculator's results (a key of ``None`` is never found). A label that is present
    but malformed raises :class:`ValueError`; a missing label is simply absent from the returned
    dict (``labels.require`` is checked across frames by
    :func:`~equiformer_lite.data.validate_structures`). No unit conversion is done here.

    Per-atom energies (ASE's ``energies``: ``atoms.arrays["energies"]`` or a single-point
    calculator's ``energies``; ``atomic_energies_key=None`` skips them) are returned under
    :data:`keys.ATOMIC_ENERGIES` with shape ``[N]``. With a total energy present they must sum
    to it within 1e-6 relative (to the larger of ``|E|`` and ``sum_i |E_i|``).
    """
    energy_key, forces_key, stress_key = labels.energy_key, labels.forces_key, labels.stress_key
    atomic_energies_key = labels.atomic_energies_key
    n = len(atoms)
    found: dict[str, np.ndarray] = {}
    energy = _label_source(atoms, energy_key)
    if energy is not None:
        energy = _numbers(energy, "energy", energy_key).reshape(-1)
        if energy.shape != (1,):
            raise ValueError(f"energy label '{energy_key}' must be one number, got shape {energy.shape}")
        found[keys.ENERGY] = energy
    forces = _label_source(atoms, forces_key)
    if forces is not None:
        forces = _numbers(forces, "forces", forces_key)
        if forces.shape != (n, 3):
            raise ValueError(f"forces label '{forces_key}' must have shape ({n}, 3), got {forces.shape}")
        found[keys.FORCES] = forces
    stress = _label_source(atoms, stress_key)
    if stress is not None:
        stress = _numbers(stress, "stress", stress_key)
        if stress.shape == (6,):
            stress = voigt_6_to_full_3x3_stress(stress)
        elif stress.shape == (9,):
            stress = stress.reshape(3, 3)
        if stress.shape != (3, 3):
            raise ValueError(
                f"stress label '{stress_key}' must be Voigt (6,) or (3, 3), got shape {stress.shape}"
            )
        if not atoms.pbc.all():
            raise ValueError(f"a stress label needs a fully periodic cell, got pbc={atoms.pbc.tolist()}")
        found[keys.STRESS] = stress[None]
    atomic = _label_source(atoms, atomic_energies_key)
    if atomic is not None:
        atomic = _numbers(atomic, "per-atom energies", atomic_energies_key)
        if atomic.shape != (n,):
            raise ValueError(
                f"per-atom energies label '{atomic_energies_key}' must have shape ({n},), got {atomic.shape}"
            )
        found[keys.ATOMIC_ENERGIES] = atomic
    for key, value in found.items():
        if not np.isfinite(value).all():
            raise ValueError(f"label '{key}' contains NaN or inf values")
    if keys.ATOMIC_ENERGIES in found and keys.ENERGY in found:
        total, summed = float(found[keys.ENERGY][0]), float(found[keys.ATOMIC_ENERGIES].sum())
        scale = max(abs(total), float(np.abs(found[keys.ATOMIC_ENERGIES]).sum()))
        if abs(summed - total) > 1e-6 * scale:
            raise ValueError(
                f"per-atom energies '{atomic_energies_key}' sum to {summed:.10g} but the total energy "
                f"'{energy_key}' is {total:.10g} (difference {summed - total:.3g}, more than 1e-6 relative)"
            )
    return found


def atoms_to_graph(
    atoms: Atoms,
    cutoff: float,
    *,
    dtype: Optional[torch.dtype] = None,
    with_labels: bool = True,
    labels: LabelSpec = DEFAULT_LABELS,
    min_distance: float = DEFAULT_MIN_DISTANCE,
    neighbors: Optional[SkinNeighborList] = None,
) -> Data:
    """Build the atomic graph of one structure: positions, cell, neighbour list and labels.

    Parameters
    ----------
    atoms : the structure. Positions outside the cell are fine; periodic directions need a cell.
    cutoff : neighbour-list radius, Å. Must be at least the cutoff of the model it feeds.
    dtype : float dtype of positions, cell and labels (default: torch's default dtype).
    with_labels : read energy/forces/stress/per-atom energy labels (see :func:`read_labels`).
    labels : their keys; in eV units already (a spec with units is refused: files in other
        units go through :func:`~equiformer_lite.data.read_structures`).
    min_distance : pairs closer than this (Å) are rejected as overlapping atoms.
    neighbors : a :class:`~equiformer_lite.data.SkinNeighborList` of the same ``cutoff`` to take
        the pairs from (an MD run reuses its search over steps); default: a fresh search.

    Returns
    -------
    :class:`torch_geometric.data.Data` with the fields of :mod:`equiformer_lite.data.keys`.
    Batch several with :class:`torch_geometric.loader.DataLoader` or :func:`atoms_to_batch`.

    >>> from ase.build import molecule
    >>> g = atoms_to_graph(molecule("H2O"), cutoff=3.0)
    >>> g.edge_index.shape
    torch.Size([2, 6])
    """
    if not cutoff > 0:
        raise ValueError(f"cutoff must be positive, got {cutoff}")
    check_in_memory_labels(labels)
    validate_atoms(atoms)
    dtype = dtype or torch.get_default_dtype()
    pos = atoms.get_positions()
    pbc = atoms.pbc.copy()
    cell = atoms.cell.array.copy() if pbc.any() else np.zeros((3, 3))

    if neighbors is None:
        edge_index, cell_shift = neighbor_list(pos, cutoff, cell if pbc.any() else None, pbc)
    elif neighbors.cutoff != cutoff:
        raise ValueError(f"the skin neighbour list has cutoff {neighbors.cutoff} Å, the graph asks for {cutoff} Å")
    else:
        edge_index, cell_shift = neighbors(pos, cell, pbc)
    if edge_index.shape[1] > 0:
        vectors = edge_vectors(torch.from_numpy(pos), torch.from_numpy(edge_index), torch.from_numpy(cell_shift).to(torch.float64),
                               torch.from_numpy(cell)[None], torch.zeros(len(pos), dtype=torch.long))  # [E, 3]
        lengths = vectors.norm(dim=1).numpy()  # [E]
        if lengths.min() < min_distance:
            e = int(lengths.argmin())
            raise ValueError(
                f"atoms {int(edge_index[1, e])} and {int(edge_index[0, e])} (or a periodic image) are "
                f"{lengths[e]:.3g} Å apart, closer than min_distance={min_distance} Å: overlapping atoms"
            )

    data = Data(
        **{
            keys.POSITIONS: torch.tensor(pos, dtype=dtype),
            keys.ATOMIC_NUMBERS: torch.tensor(atoms.get_atomic_numbers(), dtype=torch.long),
            keys.CELL: torch.tensor(cell, dtype=dtype).unsqueeze(0),
            keys.PBC: torch.tensor(pbc, dtype=torch.bool).unsqueeze(0),
            keys.EDGE_INDEX: torch.from_numpy(edge_index),
            keys.EDGE_CELL_SHIFT: torch.from_numpy(cell_shift).to(dtype),
            keys.GRAPH_CUTOFF: torch.tensor([cutoff], dtype=dtype),
            keys.NUM_ATOMS: torch.tensor([len(atoms)], dtype=torch.long),
        }
    )
    if with_labels:
        for key, value in read_labels(atoms, labels).items():
            data[key] = torch.tensor(value, dtype=dtype)
    return data


def check_in_memory_labels(labels: LabelSpec) -> None:
    """Refuse units for labels read from :class:`ase.Atoms` as they are (those are in eV and Å)."""
    if check_label_spec(labels).has_units:
        raise ValueError(
            f"in-memory structures are read in eV and Å, but labels give energy_unit={labels.energy_unit!r}, "
            f"length_unit={labels.length_unit!r}: convert them first, or read the file with read_structures"
        )


def atoms_to_batch(structures: Iterable[Atoms] | Atoms, cutoff: float, **kwargs) -> Batch:
    """Graphs of several structures in one :class:`torch_geometric.data.Batch`."""
    if isinstance(structures, Atoms):
        structures = [structures]
    graphs: Sequence[Data] = [atoms_to_graph(a, cutoff, **kwargs) for a in structures]
    if not graphs:
        raise ValueError("no structures given")
    return Batch.from_data_list(graphs)


def pad_missing_stress(graphs: Sequence[Data]) -> None:
    """Let structures with and without stress labels share batches (in place).

    When some graphs carry a stress label and others (molecules, say) do not, the others get a
    zero stress and every graph a ``stress_weight`` of 1 (real label) or 0 (padding), which the
    loss and the metrics use as a mask. Does nothing when all or none carry stress.
    """
    has = [keys.STRESS in g for g in graphs]
    if all(has) or not any(has):
        return
    for graph, real in zip(graphs, has):
        if not real:
            graph[keys.STRESS] = torch.zeros(1, 3, 3, dtype=graph[keys.POSITIONS].dtype)
        graph[keys.STRESS_WEIGHT] = torch.tensor([1.0 if real else 0.0], dtype=graph[keys.POSITIONS].dtype)
