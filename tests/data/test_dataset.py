"""AtomicDataset: building, batching, the on-disk cache (hits and invalidation), and splits."""

import ase.io
import numpy as np
import pytest
import torch
from ase.calculators.singlepoint import SinglePointCalculator
from torch_geometric.loader import DataLoader

import equiformer_lite.data.dataset as dataset_module
from equiformer_lite.data import (
    AtomicDataset,
    LabelSpec,
    atoms_to_graph,
    default_cache_dir,
    keys,
    load_split_indices,
    split_indices,
)
from tests.conftest import diamond, ethanol, water_box

CUTOFF = 3.0


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Never touch ~/.cache: the default cache directory lives in the test's tmp_path."""
    directory = tmp_path / "cache"
    monkeypatch.setenv(dataset_module.CACHE_DIR_ENV, str(directory))
    return directory


def _labelled(atoms, energy):
    forces = np.random.default_rng(len(atoms)).normal(size=(len(atoms), 3))
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=forces)
    return atoms


def _structures():
    return [_labelled(ethanol(), -1.0), _labelled(diamond(), -2.0), _labelled(water_box(), -3.0)]


def _write(path, structures=None):
    ase.io.write(path, structures or _structures(), format="extxyz")
    return path


def _assert_same_graphs(a: AtomicDataset, b: AtomicDataset):
    assert len(a) == len(b)
    for ga, gb in zip(a, b):
        assert sorted(ga.keys()) == sorted(gb.keys())
        for key in ga.keys():
            assert ga[key].dtype == gb[key].dtype and torch.equal(ga[key], gb[key]), key


def test_from_structures_batches_structures_of_different_sizes():
    structures = _structures()
    ds = AtomicDataset.from_structures(structures, CUTOFF)
    assert len(ds) == 3 and ds.cutoff == CUTOFF
    assert ds[0][keys.POSITIONS].dtype == torch.float64 and ds[1][keys.ENERGY].tolist() == [-2.0]
    batch = next(iter(DataLoader(ds, batch_size=3)))
    assert batch.num_graphs == 3
    assert batch[keys.NUM_ATOMS].tolist() == [len(a) for a in structures]
    assert batch[keys.ENERGY].tolist() == [-1.0, -2.0, -3.0]
    assert batch[keys.FORCES].shape == (sum(len(a) for a in structures), 3)
    expected = atoms_to_graph(structures[2], CUTOFF, dtype=torch.float64)
    assert torch.equal(ds[2][keys.EDGE_INDEX], expected[keys.EDGE_INDEX])
    # Items are shallow copies: setting an attribute leaves the data set alone.
    item = ds[0]
    item.energy = torch.zeros(1)
    assert ds[0][keys.ENERGY].tolist() == [-1.0]


def test_subset_and_constructor_validation():
    ds = AtomicDataset.from_structures(_structures(), CUTOFF)
    sub = ds.subset(np.array([2, 0]))
    assert [g[keys.ENERGY].item() for g in sub] == [-3.0, -1.0]
    assert len(ds.subset([])) == 0 and len(ds.subset(torch.tensor([1]))) == 1
    with pytest.raises(ValueError, match=r"indices \[3, -1\] out of range for a data set of 3 structures"):
        ds.subset([0, 3, -1])
    with pytest.raises(ValueError, match="1-D array of integers"):
        ds.subset([0.5])
    g0, g1 = ds[0], ds[1]
    del g1.forces
    with pytest.raises(ValueError, match=r"graph 1 has fields .* every graph needs the same labels"):
        AtomicDataset([g0, g1])
    with pytest.raises(ValueError, match=r"graph 1 was built with cutoff 2.5 Å, graph 0 with 3.0 Å"):
        AtomicDataset([g0, atoms_to_graph(_labelled(ethanol(), -1.0), 2.5)])
    with pytest.raises(TypeError, match="graph 0 is a Atoms"):
        AtomicDataset([ethanol()])
    with pytest.raises(ValueError, match=r"structures, frame 0: energy label \(required\) not found"):
        AtomicDataset.from_structures([ethanol()], CUTOFF)
    overlapping = ethanol()
    overlapping.positions[1] = overlapping.positions[0] + 0.01
    with pytest.raises(ValueError, match=r"structures, frame 1: atoms .* overlapping atoms"):
        AtomicDataset.from_structures([ethanol(), overlapping], CUTOFF, LabelSpec(require=()))


def test_mixed_stress_is_padded_and_data_sets_concatenate():
    molecules = AtomicDataset.from_structures([_labelled(ethanol(), -1.0)], CUTOFF)
    crystal = diamond()
    crystal.calc = SinglePointCalculator(crystal, energy=-2.0, forces=np.zeros((2, 3)) + 0.1, stress=np.ones(6))
    mixed = AtomicDataset.from_structures([_labelled(ethanol(), -1.0), crystal], CUTOFF)
    assert mixed[0][keys.STRESS].abs().sum() == 0 and mixed[1][keys.STRESS].tolist() == [[[1.0] * 3] * 3]
    assert mixed[0][keys.STRESS_WEIGHT].tolist() == [0.0] and mixed[1][keys.STRESS_WEIGHT].tolist() == [1.0]
    assert next(iter(DataLoader(mixed, batch_size=2)))[keys.STRESS].shape == (2, 3, 3)

    crystals = AtomicDataset.from_structures([crystal], CUTOFF)
    both = AtomicDataset.concatenate([molecules, crystals])
    assert len(both) == 2 and both[0][keys.STRESS_WEIGHT].tolist() == [0.0]
    assert keys.STRESS not in molecules[0] and keys.STRESS_WEIGHT not in crystals[0]  # inputs untouched
    assert both.species == ["H", "C", "O"] and molecules.species == ["H", "C", "O"]
    assert both.graphs[1] is not crystals.graphs[0] and len(both.subset([1]).graphs) == 1
    again = AtomicDataset.concatenate([both, crystals])  # padded next to all-real stress
    assert [g[keys.STRESS_WEIGHT].item() for g in again] == [0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="cutoff"):
        AtomicDataset.concatenate([molecules, AtomicDataset.from_structures([_labelled(ethanol(), -1.0)], 2.5)])


def test_second_load_comes_from_the_cache(tmp_path, cache_dir, monkeypatch):
    path = _write(tmp_path / "train.extxyz")
    first = AtomicDataset.from_file(path, CUTOFF)
    files = list(cache_dir.iterdir())
    assert len(files) == 1 and files[0].suffix == ".pt"  # atomic write: no temp file left behind
    payload = torch.load(files[0], weights_only=True)  # tensors, strings and numbers only
    assert payload["key"]["sha256"] and payload["key"]["cutoff"] == CUTOFF

    def fail(*args, **kwargs):
        raise AssertionError("rebuilt instead of loading the cache")

    monkeypatch.setattr(dataset_module, "atoms_to_graph", fail)
    monkeypatch.setattr(dataset_module, "read_structures_with_summary", fail)
    second = AtomicDataset.from_file(path, CUTOFF)
    _assert_same_graphs(first, second)
    assert second.summary == first.summary and second.summary.num_structures == 3
    assert next(iter(DataLoader(second, batch_size=3))).num_graphs == 3
    with pytest.raises(ValueError, match=r"train.extxyz, frame 0: element\(s\) \['C'\] not in species"):
        AtomicDataset.from_file(path, CUTOFF, species=["H", "O"])  # checked on a cache hit too


def test_cache_is_invalidated_by_content_and_settings(tmp_path, cache_dir, monkeypatch):
    path = _write(tmp_path / "train.extxyz")
    AtomicDataset.from_file(path, CUTOFF)
    calls = []
    build = dataset_module.atoms_to_graph
    monkeypatch.setattr(dataset_module, "atoms_to_graph", lambda *a, **k: calls.append(1) or build(*a, **k))

    structures = _structures()
    structures[0].calc.results["energy"] = -1.5  # same size, different content
    _write(path, structures)
    changed = AtomicDataset.from_file(path, CUTOFF)
    assert len(calls) == 3 and changed[0][keys.ENERGY].tolist() == [-1.5]
    AtomicDataset.from_file(path, 2.5)  # another cutoff
    AtomicDataset.from_file(path, CUTOFF, LabelSpec(require=("energy", "forces")))  # other settings
    assert len(calls) == 9 and len(list(cache_dir.iterdir())) == 4
    AtomicDataset.from_file(path, CUTOFF)
    assert len(calls) == 9


def test_cache_location_and_corrupt_cache(tmp_path, cache_dir, monkeypatch):
    path = _write(tmp_path / "train.extxyz")
    own = tmp_path / "own"
    AtomicDataset.from_file(path, CUTOFF, cache_dir=own)
    assert len(list(own.iterdir())) == 1 and not cache_dir.exists()
    AtomicDataset.from_file(path, CUTOFF, use_cache=False)
    assert not cache_dir.exists()

    assert default_cache_dir() == cache_dir
    monkeypatch.delenv(dataset_module.CACHE_DIR_ENV)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "equiformer_lite" / "graphs"

    cache_file = next(own.iterdir())
    cache_file.write_bytes(b"truncated")
    rebuilt = AtomicDataset.from_file(path, CUTOFF, cache_dir=own)  # a warning, then a rebuild
    assert len(rebuilt) == 3
    torch.load(cache_file, weights_only=True)  # replaced by a good one


def test_from_file_units_and_keys_reach_the_graphs(tmp_path):
    rng = np.random.default_rng(0)
    energies = np.array([-100.0, -100.5])  # kcal/mol
    np.savez(tmp_path / "md.npz", R=ethanol().positions[None] + 0.01 * rng.normal(size=(2, 9, 3)),
             z=ethanol().numbers, E=energies, F=rng.normal(size=(2, 9, 3)))  # fmt: skip
    ds = AtomicDataset.from_file(tmp_path / "md.npz", CUTOFF)
    np.testing.assert_allclose(ds[1][keys.ENERGY].numpy(), [-100.5 * 0.0433641], rtol=1e-6)
    assert ds.summary.energy_unit == "kcal/mol"
    in_ev = AtomicDataset.from_file(tmp_path / "md.npz", CUTOFF, LabelSpec(energy_unit="eV"))  # a different cache entry
    assert in_ev[1][keys.ENERGY].tolist() == [-100.5]


def test_split_indices_reproducible_disjoint_and_complete():
    splits = split_indices(103, val_fraction=0.1, test_fraction=0.2, seed=7)
    assert [len(splits[k]) for k in ("train", "val", "test")] == [72, 10, 21]
    joined = np.concatenate(list(splits.values()))
    assert np.array_equal(np.sort(joined), np.arange(103))  # disjoint and covering
    again = split_indices(103, val_fraction=0.1, test_fraction=0.2, seed=7)
    assert all(np.array_equal(splits[k], again[k]) for k in splits)
    assert not np.array_equal(split_indices(103, test_fraction=0.2, seed=8)["test"], splits["test"])
    # The test set does not move when only the validation fraction changes.
    assert np.array_equal(split_indices(103, val_fraction=0.3, test_fraction=0.2, seed=7)["test"], splits["test"])
    with pytest.raises(ValueError, match=r"val_fraction must lie in \[0, 1\), got 1.5"):
        split_indices(10, val_fraction=1.5)
    with pytest.raises(ValueError, match=r"leave no training structures out of 2"):
        split_indices(2, val_fraction=0.5, test_fraction=0.5)
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        split_indices(0)


def test_load_split_indices(tmp_path):
    np.savez(tmp_path / "s.npz", train=np.array([0, 2, 3]), val=np.array([1]))
    splits = load_split_indices(tmp_path / "s.npz", num_structures=4)
    assert splits["train"].tolist() == [0, 2, 3] and splits["val"].tolist() == [1] and splits["test"].size == 0
    (tmp_path / "train.txt").write_text("# training set\n0\n2 3\n")
    np.save(tmp_path / "test.npy", np.array([1]))
    splits = load_split_indices({"train": tmp_path / "train.txt", "test": str(tmp_path / "test.npy")})
    assert splits["train"].tolist() == [0, 2, 3] and splits["test"].tolist() == [1]

    (tmp_path / "bad.txt").write_text("0 1.5\n")
    np.save(tmp_path / "float.npy", np.array([0.0, 1.0]))
    cases = [
        (dict(train=[0, 1], test=[1, 2]), r"splits 'train' and 'test' share indices \[1\]"),
        (dict(train=[0, 1, 1]), r"split 'train' repeats indices \[1\]"),
        (dict(train=[0, 5]), r"split 'train' has indices \[5\] outside 0..3"),
        (dict(train=[-1, 0]), r"split 'train' has indices \[-1\] outside 0..3"),
        (dict(train=[0], valid=[1]), r"unknown split name\(s\) \['valid'\]"),
        (dict(val=[0]), r"no 'train' indices"),
        (dict(train=tmp_path / "bad.txt"), r"bad.txt: split 'train' is not a list of integer indices"),
        (dict(train=tmp_path / "float.npy"), r"split 'train' must be a 1-D array of integers, got shape \(2,\)"),
    ]
    for given, message in cases:
        with pytest.raises(ValueError, match=message):
            load_split_indices(given, num_structures=4)
    with pytest.raises(ValueError, match=r"give a .npz or .json with train/val/test, a directory"):
        load_split_indices(tmp_path / "train.txt")
    with pytest.raises(FileNotFoundError, match="no such split file or directory"):
        load_split_indices(tmp_path / "missing.npz")


def test_load_split_indices_from_json_and_directory(tmp_path):
    (tmp_path / "split.json").write_text('{"train": [3, 0], "val": [1], "test": [2]}')
    splits = load_split_indices(tmp_path / "split.json", num_structures=4)
    assert [splits[k].tolist() for k in ("train", "val", "test")] == [[3, 0], [1], [2]]
    (tmp_path / "bad.json").write_text('{"train": [0, 1.5]}')
    with pytest.raises(ValueError, match="bad.json: split 'train' must be a 1-D array of integers"):
        load_split_indices(tmp_path / "bad.json")

    directory = tmp_path / "splits"
    directory.mkdir()
    np.save(directory / "train.npy", np.arange(5))
    (directory / "val.txt").write_text("5 6\n")
    splits = load_split_indices(directory)
    assert splits["train"].tolist() == [0, 1, 2, 3, 4] and splits["val"].tolist() == [5, 6]
    assert splits["test"].dtype == np.int64 and splits["test"].size == 0
    (directory / "val.npy").write_bytes((directory / "train.npy").read_bytes())
    with pytest.raises(ValueError, match=r"both val.npy and val.txt; keep one"):
        load_split_indices(directory)
