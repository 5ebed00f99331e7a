"""Reference energies E0 by least squares, and data-set statistics for scale, shift and neighbours."""

import numpy as np
import pytest
from ase import Atoms
from ase.calculators.singlepoint import SinglePointCalculator
from ase.neighborlist import neighbor_list

from equiformer_lite.data import AtomicDataset, LabelSpec, compute_statistics, fit_atomic_energies
from tests.conftest import diamond, ethanol

SPECIES = ["H", "C", "O"]
E0 = {"H": -13.6, "C": -1029.5, "O": -2041.3}  # eV, realistic magnitudes
CUTOFF = 3.0


def _random_molecule(rng, counts) -> Atoms:
    """Atoms of the given element counts on a jittered grid 1.6 Å apart (no overlaps)."""
    symbols = [s for s, n in zip(SPECIES, counts) for _ in range(n)]
    grid = np.stack(np.meshgrid(*[np.arange(3)] * 3, indexing="ij"), -1).reshape(-1, 3)
    positions = 1.6 * grid[rng.permutation(len(grid))[: len(symbols)]] + rng.uniform(-0.1, 0.1, (len(symbols), 3))
    return Atoms(symbols, positions=positions)


def _varied_dataset(noise: float = 1e-3, n: int = 24, seed: int = 0):
    rng = np.random.default_rng(seed)
    structures, energies = [], []
    for _ in range(n):
        counts = rng.integers(0, 5, size=3) + np.array([1, 0, 0])
        atoms = _random_molecule(rng, counts)
        energy = sum(E0[s] for s in atoms.get_chemical_symbols()) + noise * rng.normal() * len(atoms)
        forces = rng.normal(size=(len(atoms), 3))
        atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
        structures.append(atoms)
        energies.append(energy)
    return AtomicDataset.from_structures(structures, CUTOFF), structures, np.array(energies)


def test_fit_recovers_known_reference_energies():
    ds, _, _ = _varied_dataset(noise=1e-3)
    fitted = fit_atomic_energies(ds, SPECIES)
    assert list(fitted) == SPECIES
    for s in SPECIES:
        assert fitted[s] == pytest.approx(E0[s], abs=5e-3)
    exact = fit_atomic_energies(_varied_dataset(noise=0.0)[0], SPECIES)
    for s in SPECIES:
        assert exact[s] == pytest.approx(E0[s], abs=1e-8)


def test_rank_deficient_single_molecule_md():
    rng = np.random.default_rng(1)
    structures = []
    for i in range(6):
        atoms = ethanol()  # C2H6O in every frame: only the sum over the molecule is determined
        atoms.rattle(0.02, seed=10 + i)
        atoms.calc = SinglePointCalculator(atoms, energy=-4200.0 + 0.05 * rng.normal())
        structures.append(atoms)
    ds = AtomicDataset.from_structures(structures, CUTOFF)
    with pytest.warns(UserWarning, match=r"rank 1 < 3 species.*not unique.*minimum-norm"):
        fitted = fit_atomic_energies(ds, SPECIES)
    counts = np.array([6, 2, 1])  # H, C, O
    e0 = np.array([fitted[s] for s in SPECIES])
    energies = np.array([a.get_potential_energy() for a in structures])
    assert counts @ e0 == pytest.approx(energies.mean(), abs=1e-9)
    np.testing.assert_allclose(e0, counts * energies.mean() / (counts @ counts), rtol=1e-12)  # minimum norm

    with pytest.warns(UserWarning, match=r"absent from the data: \['N'\]"):
        with_n = fit_atomic_energies(_varied_dataset()[0], SPECIES + ["N"])
    assert with_n["N"] == 0.0 and with_n["C"] == pytest.approx(E0["C"], abs=5e-3)


def test_fit_errors():
    ds, _, _ = _varied_dataset(n=4)
    with pytest.raises(ValueError, match=r"structure \d+: element\(s\) \['C'\] not in species \['H', 'O'\]"):
        fit_atomic_energies(ds, ["H", "O"])
    with pytest.raises(ValueError, match=r"unknown element symbol 'Xx'"):
        fit_atomic_energies(ds, ["H", "Xx"])
    with pytest.raises(ValueError, match=r"lists an element twice"):
        fit_atomic_energies(ds, ["H", "H", "C", "O"])
    unlabelled = AtomicDataset.from_structures([ethanol()], CUTOFF, LabelSpec(require=()))
    with pytest.raises(ValueError, match=r"structures \[0\] have no energy label"):
        fit_atomic_energies(unlabelled, SPECIES)
    with pytest.raises(ValueError, match="the data set is empty"):
        fit_atomic_energies(ds.subset([]), SPECIES)


def test_statistics_match_direct_computation():
    ds, structures, energies = _varied_dataset()
    fitted = fit_atomic_energies(ds, SPECIES)
    stats = compute_statistics(ds, SPECIES, fitted)
    n_atoms = np.array([len(a) for a in structures])
    assert stats.num_structures == len(structures) and stats.num_atoms == n_atoms.sum()
    symbols = [s for a in structures for s in a.get_chemical_symbols()]
    assert stats.element_counts == {s: symbols.count(s) for s in SPECIES}
    total_e0 = np.array([sum(fitted[s] for s in a.get_chemical_symbols()) for a in structures])
    residual = (energies - total_e0) / n_atoms
    assert stats.energy_per_atom_mean == pytest.approx(residual.mean(), abs=1e-12)
    assert stats.energy_per_atom_std == pytest.approx(residual.std(), rel=1e-6)
    forces = np.concatenate([a.get_forces() for a in structures])
    assert stats.forces_rms == pytest.approx(np.sqrt(np.mean(forces**2)), rel=1e-12)
    assert (stats.has_energy, stats.has_forces, stats.has_stress) == (True, True, False)
    # Least-squares E0s leave no constant per-atom shift to gain: sum_g N_g r_g = 0.
    assert abs(np.sum(n_atoms**2 * residual)) < 1e-8 * np.abs(energies).sum()
    assert stats.energy_shift_per_atom == 0.0 and stats.energy_per_atom_mean != 0.0
    assert stats.suggested_scale_shift() == (stats.forces_rms, 0.0) == (stats.suggested_scale, stats.suggested_shift)
    # With E0s from elsewhere the shift is the best constant per atom on top of them.
    given = {s: v + 0.01 for s, v in fitted.items()}
    shifted = compute_statistics(ds, SPECIES, given)
    assert shifted.suggested_shift == pytest.approx(-0.01, abs=1e-9)
    assert shifted.energy_per_atom_mean == pytest.approx(stats.energy_per_atom_mean - 0.01, abs=1e-12)


def test_neighbours_energy_only_scale_and_stress():
    crystal = diamond()
    crystal.calc = SinglePointCalculator(crystal, energy=-18.0, stress=np.ones(6))
    other = diamond()
    other.rattle(0.05, seed=9)
    other.calc = SinglePointCalculator(other, energy=-17.0, stress=np.zeros(6))
    ds = AtomicDataset.from_structures([crystal, other], 4.0)
    stats = compute_statistics(ds, ["C"], {"C": -9.0})
    assert (stats.has_forces, stats.has_stress, stats.forces_rms) == (False, True, None)
    expected = np.mean([len(neighbor_list("i", a, 4.0)) / len(a) for a in (crystal, other)])
    assert stats.avg_num_neighbors == pytest.approx(expected) and stats.cutoff == 4.0
    smaller = compute_statistics(ds, ["C"], [-9.0], cutoff=2.0)  # e.g. a model with a smaller cutoff
    expected = np.mean([len(neighbor_list("i", a, 2.0)) / len(a) for a in (crystal, other)])
    assert smaller.avg_num_neighbors == pytest.approx(expected) and smaller.avg_num_neighbors < stats.avg_num_neighbors
    # Without forces the scale is the std of the per-atom residual (0 and 0.5 eV/atom); the shift
    # is sum_g N_g r_g / sum_g N_g^2 = (2 * 0 + 2 * 1) / 8.
    assert stats.suggested_scale_shift() == pytest.approx((0.25, 0.25))
    assert stats.energy_per_atom_mean == pytest.approx(0.25)

    with pytest.raises(ValueError, match=r"cutoff \(5.0 Å\) must lie in \(0, 4.0\]"):
        compute_statistics(ds, ["C"], cutoff=5.0)
    with pytest.raises(ValueError, match=r"atomic_energies has no value for \['C'\]"):
        compute_statistics(ds, ["C"], {"H": 0.0})
    with pytest.raises(ValueError, match=r"one value per species \(1\), got shape \(2,\)"):
        compute_statistics(ds, ["C"], [0.0, 1.0])


def test_padded_stress_counts_as_present_only_where_real():
    crystal = diamond()
    crystal.calc = SinglePointCalculator(crystal, energy=-18.0, forces=np.ones((2, 3)), stress=np.ones(6))
    molecule = ethanol()
    molecule.calc = SinglePointCalculator(molecule, energy=-4200.0, forces=np.ones((9, 3)))
    mixed = AtomicDataset.from_structures([molecule, crystal], CUTOFF)
    assert compute_statistics(mixed, SPECIES).has_stress
    assert not compute_statistics(mixed.subset([0]), SPECIES).has_stress  # zero stress of weight 0


def test_per_atom_label_statistics_set_the_scale_for_per_atom_training():
    rng = np.random.default_rng(5)
    structures, residuals = [], []
    for _ in range(6):
        atoms = _random_molecule(rng, [2, 1, 1])
        eps = rng.normal(0.3, 0.2, len(atoms))  # per-atom residuals on top of E0
        residuals.append(eps)
        per_atom = eps + np.array([E0[s] for s in atoms.get_chemical_symbols()])
        forces = 10.0 * rng.normal(size=(len(atoms), 3))
        atoms.calc = SinglePointCalculator(atoms, energy=per_atom.sum(), energies=per_atom, forces=forces)
        structures.append(atoms)
    stats = compute_statistics(AtomicDataset.from_structures(structures, CUTOFF), SPECIES, E0)
    residuals = np.concatenate(residuals)
    assert stats.atomic_energy_mean == pytest.approx(residuals.mean(), abs=1e-10)
    assert stats.atomic_energy_std == pytest.approx(residuals.std(), abs=1e-10)
    assert stats.suggested_scale_shift(per_atom_labels=True) == pytest.approx((residuals.std(), residuals.mean()))
    assert stats.suggested_scale_shift() == (stats.forces_rms, stats.suggested_shift)  # the force RMS otherwise
    plain = [a.copy() for a in structures]
    for atoms, original in zip(plain, structures):  # the same frames without per-atom labels
        atoms.calc = SinglePointCalculator(atoms, energy=original.get_potential_energy(), forces=original.get_forces())
    without = compute_statistics(AtomicDataset.from_structures(plain, CUTOFF), SPECIES, E0)
    assert without.atomic_energy_std is None
    assert without.suggested_scale_shift(per_atom_labels=True) == without.suggested_scale_shift()
