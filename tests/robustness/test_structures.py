"""Bad structures and graphs, through atoms_to_graph, the models and the ASE calculator: each
gives an exception that names the problem. And the physical cases that must simply work: a lone
atom gets exactly its E0, and a float32 model does not care where in space the structure sits."""

import numpy as np
import pytest
import torch
from ase import Atoms
from ase.calculators.calculator import PropertyNotImplementedError

from equiformer_lite import EquiformerCalculator, atoms_to_batch, atoms_to_graph, keys
from tests.conftest import CUTOFF, diamond, ethanol, small_potential

E0 = {"H": -13.6, "C": -1029.0, "O": -2041.0}


@pytest.fixture(scope="module")
def model():
    return small_potential("se3", torch.float64)


def _nan_positions():
    atoms = ethanol()
    atoms.positions[2, 1] = np.nan
    return atoms


def _inf_cell():
    atoms = diamond()
    atoms.cell[0, 0] = np.inf
    return atoms


def _flat_cell():
    atoms = ethanol()
    atoms.cell = [[5, 0, 0], [0, 5, 0], [0, 0, 0]]
    atoms.pbc = True
    return atoms


def _overlap():
    atoms = ethanol()
    atoms.positions[1] = atoms.positions[0] + 0.01
    return atoms


def _bad_number():
    atoms = ethanol()
    atoms.numbers[0] = 0
    return atoms


def _labelled(**info):
    atoms = ethanol()
    atoms.info.update(info)
    return atoms


def _with_array(name, value):
    atoms = ethanol()
    atoms.arrays[name] = value
    return atoms


def _energies_not_summing():
    atoms = ethanol()
    atoms.arrays["energies"] = np.ones(len(atoms))
    atoms.info["energy"] = 100.0
    return atoms


GRAPH_CASES = {
    "not-atoms": (lambda: [[0, 0, 0]], TypeError, r"expected ase.Atoms, got list"),
    "empty": (lambda: Atoms(), ValueError, r"empty structure"),
    "nan-position": (_nan_positions, ValueError, r"positions of atoms \[2\] are not finite"),
    "inf-cell": (_inf_cell, ValueError, r"the cell is not finite"),
    "pbc-flat-cell": (_flat_cell, ValueError, r"needs a cell of three independent lattice vectors"),
    "overlapping-atoms": (_overlap, ValueError, r"atoms [01] and [01] .* closer than min_distance=0.1 Å: overlapping atoms"),
    "atomic-number-zero": (_bad_number, ValueError, r"invalid atomic numbers \[0, 1, 6, 8\]"),
    "energy-two-numbers": (lambda: _labelled(energy=[1.0, 2.0]), ValueError, r"energy label 'energy' must be one number, got shape \(2,\)"),
    "energy-nan": (lambda: _labelled(energy=float("nan")), ValueError, r"label 'energy' contains NaN or inf"),
    "forces-wrong-shape": (lambda: _with_array("forces", np.zeros((9, 2))), ValueError, r"forces label 'forces' must have shape \(9, 3\), got \(9, 2\)"),
    "stress-on-molecule": (lambda: _labelled(stress=np.zeros(6)), ValueError, r"a stress label needs a fully periodic cell"),
    "stress-wrong-shape": (lambda: _labelled(stress=np.zeros(4)), ValueError, r"stress label 'stress' must be Voigt \(6,\) or \(3, 3\)"),
    "atomic-energies-wrong-sum": (_energies_not_summing, ValueError, r"per-atom energies 'energies' sum to"),
}


@pytest.mark.parametrize("make, error, message", list(GRAPH_CASES.values()), ids=list(GRAPH_CASES))
def test_a_bad_structure_is_refused_where_it_enters(make, error, message):
    with pytest.raises(error, match=message):
        atoms_to_graph(make(), CUTOFF)


def test_a_non_positive_cutoff_is_refused():
    with pytest.raises(ValueError, match=r"cutoff must be positive, got -1"):
        atoms_to_graph(ethanol(), -1.0)


def _graph_with(model, change):
    graph = atoms_to_graph(ethanol(), CUTOFF)
    change(graph)
    return graph


def _set(name, value):
    def change(graph):
        graph[name] = value
    return change


def _coincident(graph):
    i, j = graph[keys.EDGE_INDEX][:, 0].tolist()
    graph[keys.POSITIONS][i] = graph[keys.POSITIONS][j]


MODEL_CASES = {
    "unknown-element": (lambda m: atoms_to_graph(Atoms("NaCl", positions=[[0, 0, 0], [2.5, 0, 0]]), CUTOFF),
                        ValueError, r"Cl.*Na|Na.*Cl"),
    "nan-in-graph": (lambda m: _graph_with(m, lambda g: g[keys.POSITIONS].__setitem__((0, 0), float("nan"))),
                     ValueError, r"positions contain NaN or inf"),
    "coincident-in-graph": (lambda m: _graph_with(m, _coincident), ValueError, r"coincident atoms: an edge has zero length"),
    "short-neighbour-list": (lambda m: atoms_to_graph(ethanol(), CUTOFF / 2), ValueError,
                             r"the neighbour list was built with cutoff .* smaller than the model's"),
    "missing-graph-fields": (lambda m: {keys.POSITIONS: torch.zeros(2, 3, dtype=torch.float64)}, ValueError,
                             r"the input lacks the graph fields .*build it with equiformer_lite.atoms_to_graph"),
    "unsorted-batch": (lambda m: _graph_with(m, _set(keys.BATCH, torch.tensor([1, 0, 0, 0, 0, 0, 0, 0, 0]))), ValueError,
                       r"the batch vector must be sorted"),
}


@pytest.mark.parametrize("make, error, message", list(MODEL_CASES.values()), ids=list(MODEL_CASES))
def test_a_bad_graph_is_refused_by_the_model(model, make, error, message):
    with pytest.raises(error, match=message):
        model(make(model))


def test_stress_of_a_molecule_is_refused(model):
    with pytest.raises(ValueError, match=r"stress needs at least one fully periodic structure"):
        model(atoms_to_graph(ethanol(), CUTOFF), compute_stress=True)
    atoms = ethanol()
    atoms.calc = EquiformerCalculator(model)
    with pytest.raises(PropertyNotImplementedError, match=r"stress needs a fully periodic cell"):
        atoms.get_stress()


def test_the_calculator_refuses_overlapping_atoms_and_unknown_elements(model):
    atoms = _overlap()
    atoms.calc = EquiformerCalculator(model)
    with pytest.raises(ValueError, match=r"overlapping atoms"):
        atoms.get_potential_energy()
    salt = Atoms("NaCl", positions=[[0, 0, 0], [2.5, 0, 0]])
    salt.calc = EquiformerCalculator(model)
    with pytest.raises(ValueError, match=r"Cl.*Na|Na.*Cl"):
        salt.get_forces()


def test_the_calculator_refuses_a_model_file_that_does_not_exist(tmp_path):
    with pytest.raises(FileNotFoundError):
        EquiformerCalculator(tmp_path / "no_model.pt")


# --- the physical cases ----------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["se3", "gatv2"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["float64", "float32"])
def test_a_single_atom_gets_exactly_its_e0(kind, dtype):
    model = small_potential(kind, dtype)
    model.set_atomic_energies(E0)
    for symbol in E0:
        atoms = Atoms(symbol, positions=[[0.3, -1.2, 4.0]])
        atoms.calc = EquiformerCalculator(model)
        assert atoms.get_potential_energy() == pytest.approx(E0[symbol], rel=1e-7 if dtype == torch.float32 else 1e-14)
        assert (atoms.get_forces() == 0).all()


@pytest.mark.parametrize("kind", ["se3", "gatv2"])
@pytest.mark.parametrize("make", [ethanol, diamond], ids=["ethanol", "diamond-cell"])
def test_a_float32_model_gives_the_same_result_a_1e5_angstrom_away(kind, make):
    """Positions are taken relative to the structure's centroid in float64 before the model casts
    them, so a translation by 1e5 Å (where float32 resolves only 8 mÅ) changes nothing beyond the
    round-off of the relative geometry."""
    model = small_potential(kind, torch.float32)
    calc = EquiformerCalculator(model)
    here = make()
    here.calc = calc
    energy, forces = here.get_potential_energy(), here.get_forces().copy()
    for offset in (1e5, 1e8):
        there = make()
        there.translate([offset, -offset, 0.5 * offset])
        there.calc = calc
        assert there.get_potential_energy() == pytest.approx(energy, rel=1e-6, abs=1e-5), offset
        assert np.abs(there.get_forces() - forces).max() < 1e-5, offset
    if here.pbc.all():
        there = make()
        there.translate([1e5, 0, 0])
        there.calc = calc
        assert np.abs(there.get_stress() - here.get_stress()).max() < 1e-6


def test_a_batch_is_centred_per_structure():
    """Two structures of one batch, one far away: each keeps its own relative geometry."""
    model = small_potential("se3", torch.float32)
    near, far = ethanol(), ethanol()
    far.translate([1e6, 0, 0])
    out = model(atoms_to_batch([near, far], CUTOFF, dtype=torch.float64))
    assert torch.allclose(out[keys.ENERGY][0], out[keys.ENERGY][1], rtol=1e-6)
    assert torch.allclose(out[keys.FORCES][:9], out[keys.FORCES][9:], atol=1e-5)


_WATER = "O 0 0 0 {f}\nH 0.96 0 0 {f}\nH 0 0.96 0 {f}\n"
FILE_CASES = {
    "energy-text": ('3\nProperties=species:S:1:pos:R:3 energy=abc pbc="F F F"\n' + _WATER.format(f=""),
                    "bad.extxyz", r"bad.extxyz, frame 0: energy label 'energy' must be numbers, got 'abc'"),
    "forces-text": ('3\nProperties=species:S:1:pos:R:3:forces:S:3 energy=-1.0 pbc="F F F"\n' + _WATER.format(f="a b c"),
                    "bad.extxyz", r"bad.extxyz: ASE could not read it as format 'extxyz': could not convert string to float: 'a'"),
    "database-not-sqlite": ("hello, not a database", "bad.db", r"bad.db: not a readable ASE database \(DatabaseError"),
    "database-corrupt": (b"SQLite format 3\x00" + b"\x13" * 500, "bad.db", r"bad.db: not a readable ASE database"),
}


@pytest.mark.parametrize("content, name, message", list(FILE_CASES.values()), ids=list(FILE_CASES))
def test_a_bad_label_or_broken_file_names_the_file_frame_and_label(tmp_path, content, name, message):
    from equiformer_lite.data import read_structures

    path = tmp_path / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(ValueError, match=message):
        read_structures(path)
