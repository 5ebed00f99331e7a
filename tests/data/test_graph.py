"""ASE -> graph conversion, labels, batching, and clear errors on bad input."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.build import molecule
from ase.calculators.singlepoint import SinglePointCalculator

from equiformer_lite.data import LabelSpec, atoms_to_batch, atoms_to_graph, keys, read_labels
from tests.conftest import diamond, ethanol


def test_fields_and_shapes():
    atoms = ethanol()
    g = atoms_to_graph(atoms, cutoff=3.0, dtype=torch.float64)
    n = len(atoms)
    assert g[keys.POSITIONS].shape == (n, 3) and g[keys.POSITIONS].dtype == torch.float64
    assert g[keys.ATOMIC_NUMBERS].tolist() == atoms.numbers.tolist()
    assert g[keys.CELL].shape == (1, 3, 3) and g[keys.PBC].shape == (1, 3)
    assert g[keys.EDGE_INDEX].shape[0] == 2 and g[keys.EDGE_CELL_SHIFT].shape == (g.num_edges, 3)
    assert float(g[keys.GRAPH_CUTOFF]) == 3.0


def test_labels_from_single_point_calculator_and_custom_keys():
    atoms = diamond()
    forces = np.random.default_rng(0).normal(size=(2, 3))
    atoms.calc = SinglePointCalculator(atoms, energy=-3.5, forces=forces, stress=np.arange(6.0))
    g = atoms_to_graph(atoms, cutoff=3.0, dtype=torch.float64)
    assert g[keys.ENERGY].tolist() == [-3.5]
    assert torch.equal(g[keys.FORCES], torch.tensor(forces))
    # Voigt (xx, yy, zz, yz, xz, xy) -> full symmetric 3x3.
    assert g[keys.STRESS].tolist() == [[[0.0, 5.0, 4.0], [5.0, 1.0, 3.0], [4.0, 3.0, 2.0]]]

    mol = ethanol()
    mol.info["dft_energy"] = 1.25
    mol.arrays["dft_forces"] = np.ones((len(mol), 3))
    labels = read_labels(mol, LabelSpec(energy_key="dft_energy", forces_key="dft_forces"))
    assert labels[keys.ENERGY].tolist() == [1.25] and labels[keys.FORCES].shape == (len(mol), 3)
    assert keys.STRESS not in labels


def test_batching_structures_of_different_sizes():
    a, b = ethanol(), diamond()
    batch = atoms_to_batch([a, b], cutoff=3.0)
    ga, gb = atoms_to_graph(a, 3.0), atoms_to_graph(b, 3.0)
    assert batch.num_graphs == 2
    assert batch[keys.CELL].shape == (2, 3, 3)
    assert batch[keys.PBC].tolist() == [[False] * 3, [True] * 3]
    assert batch[keys.BATCH].tolist() == [0] * len(a) + [1] * len(b)
    # Edges of the second structure are offset by the atoms of the first.
    assert torch.equal(batch[keys.EDGE_INDEX][:, ga.num_edges :], gb[keys.EDGE_INDEX] + len(a))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: Atoms(), "empty structure"),
        (lambda: Atoms("H2", positions=[[0, 0, 0], [np.nan, 0, 0]]), "not finite"),
        (lambda: Atoms("H2", positions=[[0, 0, 0], [np.inf, 0, 0]]), "not finite"),
        (lambda: Atoms("H2", positions=[[0, 0, 0], [0, 0, 0]]), "overlapping atoms"),
        (lambda: Atoms("H2", positions=[[0, 0, 0], [0.05, 0, 0]]), "overlapping atoms"),
        (lambda: Atoms("H2", positions=[[0, 0, 0], [1, 0, 0]], pbc=True), "needs a cell"),
        (lambda: Atoms("XH", positions=[[0, 0, 0], [1, 0, 0]]), "invalid atomic numbers"),
        # An atom overlapping its own periodic image (cell vector shorter than min_distance).
        (lambda: Atoms("H", positions=[[0, 0, 0]], cell=[0.05, 3, 3], pbc=True), "overlapping atoms"),
    ],
)
def test_bad_structures_raise_clear_errors(make, message):
    with pytest.raises(ValueError, match=message):
        atoms_to_graph(make(), cutoff=3.0)


def test_bad_labels_raise_clear_errors():
    atoms = molecule("H2O")
    atoms.calc = SinglePointCalculator(atoms, energy=np.nan)
    with pytest.raises(ValueError, match="NaN or inf"):
        atoms_to_graph(atoms, cutoff=3.0)
    atoms.arrays["bad_forces"] = np.zeros((len(atoms), 2))
    with pytest.raises(ValueError, match=r"must have shape \(3, 3\)"):
        read_labels(atoms, LabelSpec(energy_key="none", forces_key="bad_forces"))
    atoms.info["s"] = np.zeros(6)
    with pytest.raises(ValueError, match="fully periodic"):
        read_labels(atoms, LabelSpec(energy_key="none", stress_key="s"))
    atoms.info["s"] = np.zeros(4)
    with pytest.raises(ValueError, match="Voigt"):
        read_labels(atoms, LabelSpec(energy_key="none", stress_key="s"))
    with pytest.raises(ValueError, match="cutoff must be positive"):
        atoms_to_graph(molecule("H2O"), cutoff=0.0)
