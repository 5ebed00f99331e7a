"""The neighbour list against ASE's, on open, periodic, triclinic, small and partially periodic cells."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list as ase_neighbor_list

from equiformer_lite.data import neighbor_list
from equiformer_lite.data.neighborlist import edge_vectors


def _ours(atoms, cutoff):
    edge_index, shift = neighbor_list(atoms.positions, cutoff, atoms.cell.array, atoms.pbc)
    return {(int(i), int(j), *map(int, s)) for j, i, s in zip(edge_index[0], edge_index[1], shift)}


def _ase(atoms, cutoff):
    i, j, shift = ase_neighbor_list("ijS", atoms, cutoff)
    return {(int(a), int(b), *map(int, s)) for a, b, s in zip(i, j, shift)}


def _random_cell(rng, scale):
    # A random triclinic cell: lengths around `scale`, angles far from 90 degrees.
    cell = rng.normal(size=(3, 3)) * 0.4 * scale + np.eye(3) * scale
    if np.linalg.det(cell) < 0:
        cell[0] *= -1  # keep a right-handed cell (ASE does not need it, but clearer)
    return cell


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("scale,cutoff", [(6.0, 3.0), (3.0, 4.5), (2.2, 5.0)], ids=["big-cell", "r>L/2", "r>>L"])
def test_periodic_matches_ase(seed, scale, cutoff):
    rng = np.random.default_rng(seed)
    cell = _random_cell(rng, scale)
    n = int(rng.integers(8, 16))
    frac = rng.uniform(-0.8, 1.8, size=(n, 3))  # many atoms outside the cell
    atoms = Atoms("H" * n, scaled_positions=np.zeros((n, 3)), cell=cell, pbc=True)
    atoms.positions = frac @ cell
    ours, ref = _ours(atoms, cutoff), _ase(atoms, cutoff)
    assert len(ref) > 0
    assert ours == ref


@pytest.mark.parametrize("pbc", [(True, True, False), (True, False, False), (False, True, True)])
def test_partially_periodic_matches_ase(pbc):
    rng = np.random.default_rng(7)
    cell = _random_cell(rng, 4.0)
    atoms = Atoms("H" * 5, positions=rng.uniform(-1, 5, size=(5, 3)), cell=cell, pbc=pbc)
    assert _ours(atoms, 4.0) == _ase(atoms, 4.0)


def test_open_matches_ase():
    rng = np.random.default_rng(8)
    atoms = Atoms("H" * 40, positions=rng.uniform(0, 8, size=(40, 3)))
    ours, ref = _ours(atoms, 3.0), _ase(atoms, 3.0)
    assert len(ref) > 40
    assert ours == ref


def test_lone_atom_meets_its_own_images():
    # One atom in a 2 Å cube with a 4.5 Å cutoff: every lattice point within 4.5 Å is a neighbour.
    atoms = Atoms("H", positions=[[0.3, 0.2, 0.1]], cell=np.eye(3) * 2.0, pbc=True)
    edge_index, shift = neighbor_list(atoms.positions, 4.5, atoms.cell.array, atoms.pbc)
    r = np.arange(-3, 4)
    lattice = np.array(np.meshgrid(r, r, r)).reshape(3, -1).T
    expected = int(((np.linalg.norm(lattice * 2.0, axis=1) < 4.5) & lattice.any(axis=1)).sum())
    assert edge_index.shape[1] == expected
    assert (edge_index == 0).all()
    assert not (shift == 0).all(axis=1).any()  # never the zero-shift self pair


def test_edges_are_within_cutoff_and_no_neighbour_is_dropped():
    rng = np.random.default_rng(9)
    cell = _random_cell(rng, 3.0)
    atoms = Atoms("H" * 8, positions=rng.uniform(0, 3, size=(8, 3)), cell=cell, pbc=True)
    edge_index, shift = neighbor_list(atoms.positions, 6.0, atoms.cell.array, atoms.pbc)
    vectors = edge_vectors(torch.tensor(atoms.positions), torch.from_numpy(edge_index), torch.tensor(shift, dtype=torch.float64),
                           torch.tensor(atoms.cell.array)[None], torch.zeros(8, dtype=torch.long))
    lengths = vectors.norm(dim=1).numpy()
    assert lengths.max() < 6.0
    # Dense: hundreds of neighbours per atom, far above any "max_num_neighbors" default (32).
    assert edge_index.shape[1] / 8 > 100
    assert edge_index.shape[1] == len(_ase(atoms, 6.0))


@pytest.mark.parametrize("pbc", [[True, True, False], [True, False, False]], ids=["2D", "1D"])
def test_partly_periodic_cell_with_zero_vectors_matches_ase(pbc):
    """A 2D (or 1D) cell whose non-periodic lattice vectors are zero, as the A2I systems use."""
    rng = np.random.default_rng(3)
    lengths = np.where(pbc, 4.0, 0.0)
    cell = np.diag(lengths)
    positions = rng.uniform(0, 4, size=(12, 3)) * np.where(pbc, 1.0, 0.5)
    atoms = Atoms("Ar" * 12, positions=positions, cell=cell, pbc=pbc)
    ours, ref = _ours(atoms, 2.5), _ase(atoms, 2.5)
    assert ours == ref and len(ours) > 12
