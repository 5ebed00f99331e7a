"""The neighbour list against ASE's, on open, periodic, triclinic, small and partially periodic cells."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.neighborlist import neighbor_list as ase_neighbor_list

from equiformer_lite.data import SkinNeighborList, neighbor_list
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


# --- SkinNeighborList: reuse over steps gives the pairs of a fresh search -------------------------

def _pairs(edge_index, shift):
    return {(int(j), int(i), *map(int, s)) for j, i, s in zip(edge_index[0], edge_index[1], shift)}


@pytest.mark.parametrize("periodic", [False, True], ids=["open", "triclinic"])
def test_skin_list_matches_a_fresh_search_over_a_random_walk(periodic):
    rng = np.random.default_rng(3)
    cell = _random_cell(rng, 5.0) if periodic else None
    pbc = np.array([periodic] * 3)
    positions = rng.uniform(0, 5.0, size=(30, 3))
    skin_list = SkinNeighborList(cutoff=3.0, skin=0.6)
    for _ in range(60):
        positions = positions + rng.normal(scale=0.04, size=positions.shape)  # ~0.07 Å per atom per step
        expected = _pairs(*neighbor_list(positions, 3.0, cell, pbc))
        assert _pairs(*skin_list(positions, cell, pbc)) == expected
    # Reused most steps, searched again when some atom had moved more than skin / 2.
    assert 2 <= skin_list.builds < 30


def test_skin_list_searches_again_on_a_jump_a_new_cell_or_new_atoms():
    rng = np.random.default_rng(0)
    cell, pbc = np.eye(3) * 6.0, np.ones(3, dtype=bool)
    positions = rng.uniform(0, 6.0, size=(12, 3))
    skin_list = SkinNeighborList(cutoff=2.5, skin=1.0)
    skin_list(positions, cell, pbc)
    skin_list(positions + 0.49 * np.array([1.0, 0, 0]), cell, pbc)
    assert skin_list.builds == 1  # every atom moved 0.49 Å < skin / 2
    moved = positions.copy()
    moved[4] += [0.51, 0.0, 0.0]  # one atom past skin / 2: a new search
    assert _pairs(*skin_list(moved, cell, pbc)) == _pairs(*neighbor_list(moved, 2.5, cell, pbc))
    assert skin_list.builds == 2
    strained = cell * 1.001  # NPT: the cell changed, so the shifts' vectors did
    assert _pairs(*skin_list(moved, strained, pbc)) == _pairs(*neighbor_list(moved, 2.5, strained, pbc))
    assert skin_list.builds == 3
    fewer = moved[:-1]
    assert _pairs(*skin_list(fewer, strained, pbc)) == _pairs(*neighbor_list(fewer, 2.5, strained, pbc))
    assert skin_list.builds == 4


def test_skin_zero_is_a_fresh_search_every_call():
    positions = np.random.default_rng(1).uniform(0, 4.0, size=(10, 3))
    skin_list = SkinNeighborList(cutoff=2.0, skin=0.0)
    for _ in range(3):
        assert _pairs(*skin_list(positions)) == _pairs(*neighbor_list(positions, 2.0))
    assert skin_list.builds == 3


@pytest.mark.parametrize("kwargs,match", [
    (dict(cutoff=0.0, skin=0.5), "cutoff must be a positive"),
    (dict(cutoff=3.0, skin=-0.1), "skin must be a finite number"),
    (dict(cutoff=3.0, skin=float("nan")), "skin must be a finite number"),
    (dict(cutoff=3.0, skin=float("inf")), "skin must be a finite number"),
    (dict(cutoff=3.0, skin=True), "skin must be a finite number"),
])
def test_skin_list_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SkinNeighborList(**kwargs)


def test_graph_refuses_a_skin_list_of_another_cutoff():
    from ase.build import molecule

    from equiformer_lite.data import atoms_to_graph

    with pytest.raises(ValueError, match="skin neighbour list has cutoff 3.0"):
        atoms_to_graph(molecule("H2O"), 4.0, neighbors=SkinNeighborList(3.0, 0.5))
