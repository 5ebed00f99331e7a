"""Whole runs through the config and the CLI, on small EMT-labelled files (open and periodic)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from ase import Atoms
from ase.build import molecule
from ase.calculators.emt import EMT
from ase.calculators.singlepoint import SinglePointCalculator
from ase.io import write

from equiformer_lite import EquiformerCalculator, load_model
from equiformer_lite.cli import main
from equiformer_lite.train import DataConfig, RunConfig, load_config, load_splits, train_from_config
from tests.train.conftest import emt_frames

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


def _periodic_frames(n, seed=0):
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n):
        box = Atoms(cell=[[4.2, 0, 0], [0.4, 4.0, 0], [0.2, 0.3, 4.4]], pbc=True)
        for centre in ([1.0, 1.0, 1.0], [3.0, 2.8, 3.2]):
            water = molecule("H2O")
            water.translate(np.array(centre) - water.get_center_of_mass())
            box += water
        box.positions += rng.normal(scale=0.05, size=box.positions.shape)
        box.calc = EMT()
        labels = dict(energy=box.get_potential_energy(), forces=box.get_forces(), stress=box.get_stress())
        box.calc = SinglePointCalculator(box, **labels)
        frames.append(box)
    return frames


@pytest.fixture(scope="module")
def data_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("data")
    write(folder / "molecules.extxyz", emt_frames(20, seed=1))
    write(folder / "boxes.extxyz", _periodic_frames(10))
    return folder


def _config(data_files, tmp_path, **training):
    return RunConfig.from_dict({
        "model": {"type": "se3", "cutoff": 3.5, "lmax": 1, "channels": 4, "num_heads": 2, "num_layers": 1, "num_basis": 4, "radial_hidden": 8},
        "data": {"path": [str(data_files / "molecules.extxyz"), str(data_files / "boxes.extxyz")], "cache_dir": str(tmp_path / "cache"), "atomic_energies": "fit"},
        "training": {"epochs": 2, "batch_size": 4, "lr": 5e-3, "progress": False, **training},
        "output_dir": str(tmp_path / "run"),
    })


def test_a_run_writes_model_metrics_log_and_plots(data_files, tmp_path, capsys):
    results = train_from_config(_config(data_files, tmp_path))
    out = tmp_path / "run"
    printed = capsys.readouterr().out
    assert "reference energies E0 (eV), least-squares fit" in printed
    for name in ("model.pt", "metrics.json", "log.csv", "config.yaml", "last.pt", "best.pt",
                 "learning_curve.png", "parity_energy.png", "parity_forces.png"):
        assert (out / name).exists(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_train"] + metrics["num_val"] + metrics["num_test"] == 30
    for key in ("energy_per_atom_mae", "energy_rmse", "forces_mae", "forces_rmse"):
        assert np.isfinite(metrics["test"][key])
    assert results["counters"]["skipped"] == 0
    # The saved model is ready to use: an ASE calculator on a periodic cell gives stress.
    model = load_model(out / "model.pt")
    atoms = _periodic_frames(1, seed=9)[0]
    atoms.calc = EquiformerCalculator(model)
    assert np.isfinite(atoms.get_stress()).all()
    assert model.config["species"] == ["C", "H", "O"]


def test_resume_from_the_cli(data_files, tmp_path):
    config = _config(data_files, tmp_path, epochs=3)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config.to_dict()))
    assert main(["train", str(path), "--epochs", "3"]) == 0
    log = (tmp_path / "run" / "log.csv").read_text().splitlines()
    assert len(log) == 1 + 3
    assert main(["evaluate", str(tmp_path / "run" / "model.pt"), str(data_files / "boxes.extxyz")]) == 0


def test_separate_training_validation_and_test_files(data_files, tmp_path):
    """data.train_path/val_path/test_path (MACE's --train_file/--valid_file/--test_file) are used as given."""
    frames = emt_frames(18, seed=4)
    for name, part in (("train", frames[:10]), ("val", frames[10:13]), ("test", frames[13:])):
        write(tmp_path / f"{name}.extxyz", part)
    config = _config(data_files, tmp_path, epochs=1)
    config.data = DataConfig(train_path=str(tmp_path / "train.extxyz"), val_path=str(tmp_path / "val.extxyz"),
                             test_path=[str(tmp_path / "test.extxyz")], cache_dir=str(tmp_path / "cache"),
                             atomic_energies="fit")
    train, val, test = load_splits(config, 3.5)
    assert (len(train), len(val), len(test)) == (10, 3, 5)
    # The test file's frames, in order: compare energies with the file's own labels.
    assert np.allclose([float(g["energy"]) for g in test], [f.get_potential_energy() for f in frames[13:]])
    results = train_from_config(config)
    assert (results["num_train"], results["num_val"], results["num_test"]) == (10, 3, 5)

    # Without val_path the validation set is val_fraction of the training file; without test_path no test set.
    config.data = DataConfig(train_path=str(tmp_path / "train.extxyz"), val_fraction=0.2, cache_dir=str(tmp_path / "cache"))
    train, val, test = load_splits(config, 3.5)
    assert (len(train), len(val), len(test)) == (8, 2, 0)


def test_pooled_split_indices_name_the_frames_load_splits_uses(data_files, tmp_path):
    """The indices handed to a peer code select, from the files' frames in order, exactly the
    structures of each split, also when ``max_structures`` drops some first."""
    from ase.io import read

    from equiformer_lite.train import pooled_split_indices

    config = _config(data_files, tmp_path)
    config.data.max_structures = 25
    frames = read(data_files / "molecules.extxyz", ":") + read(data_files / "boxes.extxyz", ":")
    indices = pooled_split_indices(len(frames), config)
    splits = dict(zip(("train", "val", "test"), load_splits(config, 3.5)))
    assert sum(len(v) for v in indices.values()) == 25
    assert len(np.unique(np.concatenate(list(indices.values())))) == 25
    for name, dataset in splits.items():
        assert len(dataset) == len(indices[name]) > 0
        for graph, index in zip(dataset, indices[name]):
            assert float(graph["energy"]) == pytest.approx(frames[index].get_potential_energy(), abs=1e-9)
            assert np.allclose(graph["pos"].numpy(), frames[index].positions, atol=1e-5)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"path": "a.extxyz", "train_path": "b.extxyz"}, "not both"),
        ({"val_path": "b.extxyz"}, "need data.train_path"),
        ({"train_path": "b.extxyz", "split_file": "s.json"}, "split_file"),
    ],
)
def test_conflicting_data_sources_are_errors(data, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict({"data": data})


def test_stage_two_switches_the_loss_weights_and_rechooses_the_best_model(data_files, tmp_path):
    config = _config(data_files, tmp_path, epochs=3, stage_two_epoch=2, stage_two_energy_weight=1000.0,
                     stage_two_forces_weight=1.0, stage_two_lr=1e-4, amsgrad=True)
    train_from_config(config)
    rows = list(csv.DictReader(open(tmp_path / "run" / "log.csv")))
    assert [int(float(r["stage"])) for r in rows] == [1, 1, 2]
    assert float(rows[2]["lr"]) == pytest.approx(1e-4) and float(rows[1]["lr"]) != pytest.approx(1e-4)
    # The third epoch's training loss is weighted 1000:1, the first two 1:10 (terms as logged).
    for row, (w_e, w_f) in zip(rows, [(1.0, 10.0), (1.0, 10.0), (1000.0, 1.0)]):
        expected = w_e * float(row["train_energy"]) + w_f * float(row["train_forces"]) + 1000.0 * float(row["train_stress"])
        assert float(row["train_loss"]) == pytest.approx(expected, rel=1e-6)
    # best.pt is from stage two even if a stage-one epoch had a lower (differently weighted) loss.
    assert torch.load(tmp_path / "run" / "best.pt", weights_only=True)["epoch"] == 3


def test_stage_two_by_fraction_follows_the_number_of_epochs():
    from equiformer_lite.train import TrainingConfig

    assert [TrainingConfig(epochs=n, stage_two_fraction=0.8).stage_two_start for n in (1, 2, 8, 40)] == [0, 1, 6, 32]
    with pytest.raises(ValueError, match="stage_two_fraction"):
        TrainingConfig(epochs=8, stage_two_fraction=0.8, stage_two_epoch=6)


def test_every_bundled_config_loads_and_builds_its_model():
    from equiformer_lite.models import MODELS

    paths = sorted(CONFIGS.glob("*.yaml"))
    assert paths
    for path in paths:
        config = load_config(path)
        kwargs = {k: v for k, v in config.model.items() if k != "type"}
        MODELS[config.model["type"]](species=["H", "C", "O"], **kwargs)


@pytest.mark.parametrize("name, layers, cutoff", [("gatv2_ani1", 4, 3.0), ("gatv2_ionic_liquid", 7, 5.0)])
def test_the_thesis_recipes_train_through_the_cli(data_files, tmp_path, name, layers, cutoff):
    """Each JAT recipe config, pointed at small files, trains an epoch with `equiformer-lite train`."""
    from equiformer_lite import GATv2Potential

    raw = yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())
    raw["data"].update(path=[str(data_files / "molecules.extxyz"), str(data_files / "boxes.extxyz")],
                       cache_dir=str(tmp_path / "cache"), atomic_energies="fit")
    raw["training"].update(progress=False)
    raw["output_dir"] = str(tmp_path / "run")
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    assert main(["train", str(path), "--epochs", "1"]) == 0
    model = load_model(tmp_path / "run" / "model.pt")
    assert isinstance(model, GATv2Potential)
    assert len(model.layers) == layers and model.cutoff == cutoff
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert np.isfinite(metrics["test"]["forces_mae"])


def test_default_job_config_file_matches_the_builtin_defaults():
    """`equiformer-lite train` (no file) and `equiformer-lite train configs/se3.yaml` are the same job."""
    assert load_config(CONFIGS / "se3.yaml").to_dict() == RunConfig().to_dict()


def test_the_gatv2_comparison_job_differs_from_the_default_only_in_the_model():
    gatv2, default = load_config(CONFIGS / "gatv2.yaml").to_dict(), RunConfig().to_dict()
    assert gatv2["model"]["type"] == "gatv2"
    assert {k: v for k, v in gatv2.items() if k not in ("model", "output_dir")} == {
        k: v for k, v in default.items() if k not in ("model", "output_dir")
    }


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"trainer": {}}, "unknown top-level config keys"),
        ({"training": {"epoch": 3}}, r"unknown keys in 'training': \['epoch'\]"),
        ({"training": {"lr": -1}}, "training.lr"),
        ({"data": {"val_fraction": 0.6, "test_fraction": 0.5}}, "sum below 1"),
        ({"data": {"atomic_energies": "average"}}, "data.atomic_energies"),
    ],
)
def test_config_errors_name_the_bad_value(raw, message):
    with pytest.raises(ValueError, match=message):
        RunConfig.from_dict(raw)


def test_unknown_bundled_data_and_missing_files(tmp_path):
    from equiformer_lite.train import resolve_data_paths

    with pytest.raises(ValueError, match="unknown bundled data set"):
        resolve_data_paths("bundled:nope")
    with pytest.raises(FileNotFoundError):
        resolve_data_paths(str(tmp_path / "missing.extxyz"))


def test_reference_energies_from_the_config_must_cover_every_element(data_files, tmp_path):
    config = _config(data_files, tmp_path)
    config.data.atomic_energies = {"H": -1.0, "O": -2.0}
    with pytest.raises(ValueError, match=r"no E0 for \['C'\]"):
        train_from_config(config)
