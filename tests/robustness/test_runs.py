"""Training runs that must fail loudly and leave nothing that looks like a result, and output
directories whose previous contents a run never overwrites."""

import pytest
import yaml
from ase.io import write

from equiformer_lite.cli import main
from equiformer_lite.train import RunConfig, TrainingDiverged, train_from_config
from tests.train.conftest import emt_frames

MODEL = {"type": "se3", "cutoff": 3.5, "lmax": 1, "channels": 4, "num_heads": 2, "num_layers": 1, "num_basis": 4, "radial_hidden": 8}


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "ethanol.extxyz"
    write(path, emt_frames(12, seed=3))
    return path


def _config(data_file, out, **training):
    return RunConfig.from_dict({
        "model": MODEL,
        "data": {"path": str(data_file), "atomic_energies": "fit", "val_fraction": 0.25, "test_fraction": 0.0},
        "training": {"epochs": 1, "batch_size": 3, "progress": False, "num_threads": 1, **training},
        "output_dir": str(out),
    })


@pytest.mark.parametrize("lr", [10.0, 1000.0], ids=["huge-but-finite", "non-finite"])
def test_a_diverged_run_raises_and_writes_no_model(data_file, tmp_path, lr):
    config = _config(data_file, tmp_path / "run", epochs=3, lr=lr, scheduler="constant", clip_grad_norm=None, ema_decay=None)
    with pytest.raises(TrainingDiverged, match=r"(non-finite|force MAE is .* more than 100 x that of predicting zero forces).*no model.pt written"):
        train_from_config(config)
    assert not (tmp_path / "run" / "model.pt").exists()
    assert not (tmp_path / "run" / "metrics.json").exists()


def test_a_diverged_run_exits_non_zero_from_the_cli(data_file, tmp_path, capsys):
    config = tmp_path / "config.yaml"
    raw = _config(data_file, tmp_path / "run", epochs=2, lr=1000.0, scheduler="constant", clip_grad_norm=None, ema_decay=None).to_dict()
    config.write_text(yaml.safe_dump(raw))
    assert main(["train", str(config)]) == 2
    assert "TrainingDiverged" in capsys.readouterr().err
    assert not (tmp_path / "run" / "model.pt").exists()


@pytest.fixture(scope="module")
def finished_run(data_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    train_from_config(_config(data_file, out))
    return out


def test_a_fresh_run_refuses_a_directory_with_a_previous_run(data_file, finished_run):
    before = {p.name: p.stat().st_mtime_ns for p in finished_run.iterdir()}
    with pytest.raises(ValueError, match=r"already holds a run \(model.pt, last.pt, best.pt, metrics.json.*--resume.*--force"):
        train_from_config(_config(data_file, finished_run))
    assert {p.name: p.stat().st_mtime_ns for p in finished_run.iterdir()} == before  # untouched


def test_force_replaces_the_previous_run(data_file, tmp_path):
    out = tmp_path / "run"
    train_from_config(_config(data_file, out))
    (out / "parity_energy.png").unlink()
    first = (out / "model.pt").read_bytes()
    train_from_config(_config(data_file, out, seed=1), force=True)
    assert (out / "model.pt").read_bytes() != first
    assert yaml.safe_load((out / "config.yaml").read_text())["training"]["seed"] == 1


def test_the_users_config_in_the_output_directory_is_never_overwritten(data_file, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    mine = out / "config.yaml"
    text = "# my notes\n" + yaml.safe_dump(_config(data_file, out).to_dict())
    mine.write_text(text)
    assert main(["train", str(mine)]) == 0
    assert mine.read_text() == text
    assert "the run's config goes to" in capsys.readouterr().out
    assert yaml.safe_load((out / "run_config.yaml").read_text())["output_dir"] == str(out)


def test_a_run_that_fails_before_training_leaves_the_directory_alone(data_file, tmp_path):
    out = tmp_path / "run"
    with pytest.raises(FileNotFoundError, match=r"data file .*missing.extxyz does not exist"):
        train_from_config(_config(tmp_path / "missing.extxyz", out))
    assert not out.exists()


def test_an_output_dir_that_is_a_file(data_file, tmp_path):
    (tmp_path / "run").write_text("not a directory")
    with pytest.raises(ValueError, match=r"output_dir .*run is a file, not a directory"):
        train_from_config(_config(data_file, tmp_path / "run"))
