"""Bad run configs: each gives a ValueError that names the section, the key and what is allowed."""

import pytest
import yaml

from equiformer_lite.train import RunConfig, TrainingConfig, load_config

CASES = {
    "epochs-as-word": ({"training": {"epochs": "ten"}}, r"training.epochs must be an integer, got 'ten'"),
    "epochs-fractional": ({"training": {"epochs": 2.5}}, r"training.epochs must be an integer, got 2.5"),
    "epochs-zero": ({"training": {"epochs": 0}}, r"training.epochs must be an integer >= 1, got 0"),
    "lr-as-word": ({"training": {"lr": "fast"}}, r"training.lr must be a finite number, got 'fast'"),
    "lr-negative": ({"training": {"lr": -1e-3}}, r"training.lr must be a positive number, got -0.001"),
    "lr-nan": ({"training": {"lr": float("nan")}}, r"training.lr must be a finite number, got nan"),
    "lr-inf": ({"training": {"lr": float("inf")}}, r"training.lr must be a finite number, got inf"),
    "batch-size-list": ({"training": {"batch_size": [8]}}, r"training.batch_size must be an integer, got \[8\]"),
    "amsgrad-string": ({"training": {"amsgrad": "yes"}}, r"training.amsgrad must be true or false, got 'yes'"),
    "clip-as-bool": ({"training": {"clip_grad_norm": True}}, r"training.clip_grad_norm must be a finite number or null, got True"),
    "scheduler-unknown": ({"training": {"scheduler": "cos"}}, r"training.scheduler must be one of onecycle, cosine, plateau, constant, got 'cos'"),
    "loss-unknown": ({"training": {"loss": "l1"}}, r"training.loss must be one of mse, huber, logcosh"),
    "dtype-unknown": ({"training": {"dtype": "float16"}}, r"training.dtype must be float32 or float64, got 'float16'"),
    "stage-two-after-end": ({"training": {"epochs": 4, "stage_two_epoch": 4}}, r"training.stage_two_epoch must be null or an epoch in \[0, epochs\) = \[0, 4\)"),
    "ema-decay-one": ({"training": {"ema_decay": 1.0}}, r"training.ema_decay must be null or in \(0, 1\), got 1.0"),
    "training-unknown-key": ({"training": {"learning_rate": 1e-3}}, r"unknown keys in 'training': \['learning_rate'\]; allowed: .*'lr'"),
    "training-section-list": ({"training": [{"lr": 1e-3}]}, r"config section 'training' must be a mapping of keys to values, got a list"),
    "data-section-string": ({"data": "water.xyz"}, r"config section 'data' must be a mapping of keys to values, got a str"),
    "model-section-list": ({"model": ["se3"]}, r"config section 'model' must be a mapping of keys to values, got a list"),
    "data-path-number": ({"data": {"path": 3}}, r"data.path must be a string or a list of strings or null, got 3"),
    "data-fraction-word": ({"data": {"val_fraction": "tenth"}}, r"data.val_fraction must be a finite number, got 'tenth'"),
    "data-fractions-sum": ({"data": {"val_fraction": 0.5, "test_fraction": 0.5}}, r"must be in \[0, 1\) and sum below 1"),
    "data-e0-word": ({"data": {"atomic_energies": {"H": "low"}}}, r"data.atomic_energies.H must be a finite number, got 'low'"),
    "data-e0-string": ({"data": {"atomic_energies": "guess"}}, r"data.atomic_energies must be 'fit', a dict of eV per element or null"),
    "data-max-structures-zero": ({"data": {"max_structures": 0}}, r"data.max_structures must be >= 1, got 0"),
    "data-energy-unit-unknown": ({"data": {"energy_unit": "kcal"}}, r"data: unknown energy unit 'kcal'; known: \['Hartree', 'Ry', 'eV', 'kJ/mol', 'kcal/mol', 'meV'\]"),
    "data-length-unit-unknown": ({"data": {"length_unit": "inch"}}, r"data: unknown length unit 'inch'; known: \["),
    "data-key-empty": ({"data": {"forces_key": ""}}, r"data: forces_key must be a non-empty string or None, got ''"),
    "data-key-number": ({"data": {"energy_key": 5}}, r"data.energy_key must be a string or null, got 5"),
    "data-energy-key-null": ({"data": {"energy_key": None}}, r"data: require names 'energy' but energy_key is None"),
    "top-level-unknown": ({"trainig": {}}, r"unknown top-level config keys \['trainig'\]"),
    "output-dir-number": ({"output_dir": 7}, r"output_dir must be a directory path, got 7"),
    "model-dtype": ({"model": {"type": "se3", "dtype": "float64"}}, r"'model.dtype' is set by the run from training.dtype"),
    "model-misspelt-key": ({"model": {"type": "gatv2", "hiden": 8}}, r"unknown key 'hiden' in 'model' for type 'gatv2'; allowed: \["),
}


@pytest.mark.parametrize("raw, message", list(CASES.values()), ids=list(CASES))
def test_a_bad_config_names_the_key_and_what_is_allowed(tmp_path, raw, message):
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=message):
        load_config(path)


def test_yaml_exponents_without_a_dot_are_numbers(tmp_path):
    """YAML 1.1 reads ``1e-3`` as a string; the config reads it as the number it means."""
    path = tmp_path / "config.yaml"
    path.write_text("training:\n  lr: 1e-3\n  weight_decay: 5e-7\n  epochs: '3'\n")
    training = load_config(path).training
    assert (training.lr, training.weight_decay, training.epochs) == (1e-3, 5e-7, 3)
    assert isinstance(training.epochs, int) and isinstance(training.lr, float)


def test_a_label_key_of_null_leaves_that_label_out(tmp_path):
    """``forces_key: null`` (an energies-only data set such as ANI-1) is a valid data section."""
    path = tmp_path / "config.yaml"
    path.write_text("data:\n  forces_key: null\n  stress_key: null\n  energy_unit: Hartree\n")
    labels = load_config(path).data.labels
    assert (labels.energy_key, labels.forces_key, labels.stress_key) == ("energy", None, None)
    assert labels.energy_unit == "Hartree" and labels.require == ("energy",)


def test_the_dataclass_checks_values_given_in_python_too():
    with pytest.raises(ValueError, match=r"training.batch_size must be an integer, got 'eight'"):
        TrainingConfig(batch_size="eight")
    assert TrainingConfig(epochs=3.0).epochs == 3


@pytest.mark.parametrize("text, message", [
    ("training: {lr: [", r"is not valid YAML"),
    ("- just\n- a list\n", r"must hold a mapping of sections, got list"),
], ids=["broken-yaml", "yaml-list"])
def test_a_config_file_that_is_not_a_mapping(tmp_path, text, message):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        load_config(path)


def test_the_shipped_configs_load():
    from pathlib import Path

    from equiformer_lite.md import MDConfig, load_md_config

    root = Path(__file__).parents[2] / "configs"
    runs, simulations = sorted(root.glob("*.yaml")), sorted((root / "md").glob("*.yaml"))
    assert len(runs) > 2 and len(simulations) >= 2
    for path in runs:
        assert isinstance(load_config(path), RunConfig), path
    for path in simulations:
        assert isinstance(load_md_config(path), MDConfig), path
