"""Per-atom energy labels (ASE's ``energies``) through read_labels, graphs, data sets, the cache and batches."""

import ase.io
import numpy as np
import pytest
import torch
from ase.calculators.singlepoint import SinglePointCalculator
from torch_geometric.data import Batch
from torch_geometric.loader import DataLoader
from torch_geometric.utils import scatter

import equiformer_lite.data.dataset as dataset_module
from equiformer_lite.data import AtomicDataset, LabelSpec, atoms_to_graph, keys, read_labels, read_structures_with_summary
from equiformer_lite.data.synthetic import generate
from tests.conftest import diamond, ethanol, water_box

CUTOFF = 3.0
KCAL_MOL_IN_EV = 0.0433641043


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Never touch ~/.cache: the default cache directory lives in the test's tmp_path."""
    directory = tmp_path / "cache"
    monkeypatch.setenv(dataset_module.CACHE_DIR_ENV, str(directory))
    return directory


def _with_atomic(atoms, seed, *, calculator=False):
    """Random per-atom energies, their sum as the total energy, random forces."""
    rng = np.random.default_rng(seed)
    atomic = rng.normal(-3.0, 1.0, size=len(atoms))
    forces = rng.normal(size=(len(atoms), 3))
    if calculator:
        atoms.calc = SinglePointCalculator(atoms, energy=float(atomic.sum()), energies=atomic, forces=forces)
    else:
        atoms.info["energy"] = float(atomic.sum())
        atoms.new_array("energies", atomic)
        atoms.new_array("forces", forces)
    return atoms, atomic


def test_read_labels_from_arrays_and_single_point_calculator():
    atoms, atomic = _with_atomic(ethanol(), 0)
    labels = read_labels(atoms)
    np.testing.assert_array_equal(labels[keys.ATOMIC_ENERGIES], atomic)
    assert labels[keys.ATOMIC_ENERGIES].shape == (len(atoms),)
    atoms, atomic = _with_atomic(diamond(), 1, calculator=True)
    np.testing.assert_array_equal(read_labels(atoms)[keys.ATOMIC_ENERGIES], atomic)
    assert keys.ATOMIC_ENERGIES not in read_labels(atoms, LabelSpec(atomic_energies_key=None))
    assert keys.ATOMIC_ENERGIES not in read_labels(ethanol())  # absent: simply not there
    # Without a total energy there is nothing to check the sum against.
    bare = ethanol()
    bare.new_array("energies", np.ones(len(bare)))
    assert read_labels(bare)[keys.ATOMIC_ENERGIES].tolist() == [1.0] * len(bare)


def test_malformed_per_atom_energies_are_rejected():
    atoms, _ = _with_atomic(ethanol(), 2, calculator=True)
    atoms.calc.results["energies"] = np.zeros(len(atoms) + 1)
    with pytest.raises(ValueError, match=r"per-atom energies label 'energies' must have shape \(9,\), got \(10,\)"):
        read_labels(atoms)
    atoms, atomic = _with_atomic(ethanol(), 3)
    atoms.arrays["energies"][4] = np.nan
    with pytest.raises(ValueError, match="label 'atomic_energies' contains NaN or inf"):
        read_labels(atoms)
    atoms, atomic = _with_atomic(ethanol(), 4)
    atoms.info["energy"] += 1e-4 * abs(atoms.info["energy"])
    with pytest.raises(ValueError, match=r"per-atom energies 'energies' sum to .* but the total energy 'energy' is"):
        read_labels(atoms)
    atoms.info["energy"] = float(atomic.sum()) * (1 + 1e-9)  # within 1e-6 relative: accepted
    read_labels(atoms)


def test_sum_mismatch_names_the_frame_in_a_data_set():
    structures = [_with_atomic(s, i)[0] for i, s in enumerate([ethanol(), diamond(), water_box()])]
    structures[2].info["energy"] += 0.5
    with pytest.raises(ValueError, match=r"my-set, frame 2: per-atom energies 'energies' sum to"):
        AtomicDataset.from_structures(structures, CUTOFF, source="my-set")


def test_per_atom_energies_in_some_frames_only_is_an_error():
    structures = [_with_atomic(ethanol(), 0)[0], _with_atomic(diamond(), 1)[0]]
    del structures[1].arrays["energies"]
    message = r"per-atom energies .* present in 1 of 2 frames but missing in frames \['frame 1'\]"
    with pytest.raises(ValueError, match=message):
        AtomicDataset.from_structures(structures, CUTOFF)


def test_graph_dataset_and_batch_keep_per_atom_energies():
    items = [_with_atomic(s, i, calculator=i == 1) for i, s in enumerate([ethanol(), diamond(), water_box()])]
    structures = [s for s, _ in items]
    graph = atoms_to_graph(structures[0], CUTOFF, dtype=torch.float32)
    assert graph[keys.ATOMIC_ENERGIES].dtype == torch.float32 and graph[keys.ATOMIC_ENERGIES].shape == (9,)
    ds = AtomicDataset.from_structures(structures, CUTOFF)
    for g, (_, atomic) in zip(ds, items):
        assert g[keys.ATOMIC_ENERGIES].dtype == torch.float64
        np.testing.assert_array_equal(g[keys.ATOMIC_ENERGIES].numpy(), atomic)
    batch = next(iter(DataLoader(ds, batch_size=3)))
    expected = np.concatenate([atomic for _, atomic in items])
    np.testing.assert_array_equal(batch[keys.ATOMIC_ENERGIES].numpy(), expected)
    summed = scatter(batch[keys.ATOMIC_ENERGIES], batch[keys.BATCH], dim=0, reduce="sum")
    torch.testing.assert_close(summed, batch[keys.ENERGY], rtol=1e-12, atol=1e-12)
    again = Batch.from_data_list([ds[2], ds[0]])
    assert again[keys.ATOMIC_ENERGIES].shape == (len(structures[2]) + len(structures[0]),)
    # A data set without per-atom energies is unchanged: no such field.
    plain = AtomicDataset.from_structures([ethanol()], CUTOFF, LabelSpec(require=()))
    assert keys.ATOMIC_ENERGIES not in plain[0]


def test_extxyz_file_cache_and_units(tmp_path, cache_dir):
    items = [_with_atomic(s, i) for i, s in enumerate([ethanol(), diamond(), water_box()])]
    path = tmp_path / "atomic.extxyz"
    ase.io.write(path, [s for s, _ in items], format="extxyz")
    first = AtomicDataset.from_file(path, CUTOFF)
    assert first.summary.label_keys[keys.ATOMIC_ENERGIES] == "energies"
    assert "atomic_energies from 'energies' [eV -> eV]" in first.summary.describe()
    for g, (_, atomic) in zip(first, items):
        np.testing.assert_allclose(g[keys.ATOMIC_ENERGIES].numpy(), atomic, atol=1e-8)  # 8 decimals in extxyz
    cached = AtomicDataset.from_file(path, CUTOFF)  # loaded from the cache
    assert len(list(cache_dir.glob("*.pt"))) == 1
    for a, b in zip(first, cached):
        assert torch.equal(a[keys.ATOMIC_ENERGIES], b[keys.ATOMIC_ENERGIES])
    # Another energy unit converts per-atom energies with the total (so they still sum to it).
    structures, summary = read_structures_with_summary(path, LabelSpec(energy_unit="kcal/mol"))
    assert summary.energy_unit == "kcal/mol"
    for atoms, (_, atomic) in zip(structures, items):
        assert "energies" not in atoms.arrays  # the calculator is the only (converted) source
        np.testing.assert_allclose(atoms.get_potential_energies(), atomic * KCAL_MOL_IN_EV, rtol=1e-6, atol=1e-9)
        labels = read_labels(atoms)
        assert labels[keys.ATOMIC_ENERGIES].sum() == pytest.approx(labels[keys.ENERGY][0], rel=1e-6)
    ds = AtomicDataset.from_file(path, CUTOFF, LabelSpec(energy_unit="kcal/mol"), use_cache=False)
    assert ds[0][keys.ATOMIC_ENERGIES].sum().item() == pytest.approx(ds[0][keys.ENERGY].item(), rel=1e-6)


def test_synthetic_frames_flow_into_batches():
    frames = generate("lj_2d_periodic_n128", 3, seed=0, num_atoms=40, equilibration_steps=20, sample_interval=5)
    frames += generate("lj_2d_fixed_n64", 2, seed=0, num_atoms=40, equilibration_steps=20, sample_interval=5)
    ds = AtomicDataset.from_structures(frames, cutoff=2.5)
    batch = next(iter(DataLoader(ds, batch_size=5)))
    assert batch[keys.ATOMIC_ENERGIES].shape == (200,)
    expected = np.concatenate([f.arrays["energies"] for f in frames])
    np.testing.assert_allclose(batch[keys.ATOMIC_ENERGIES].numpy(), expected)
    summed = scatter(batch[keys.ATOMIC_ENERGIES], batch[keys.BATCH], dim=0, reduce="sum")
    torch.testing.assert_close(summed, batch[keys.ENERGY], rtol=1e-10, atol=1e-10)
    assert batch[keys.PBC].tolist()[:1] == [[True, True, False]] and not batch[keys.PBC][3:].any()
