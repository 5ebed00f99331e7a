"""This project's models in the peer benchmark, trained through its own command line and config."""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]

# The recipe of each of our models in the benchmark: a config file of the project (model and
# training); the benchmark only points its data section at the split files.
RECIPES = {
    "se3": ROOT / "configs" / "se3_molecule.yaml",
    "gatv2": ROOT / "configs" / "gatv2_molecule.yaml",
}


def checkout_env(threads: int) -> dict:
    """Environment of a subprocess that imports this checkout's package (not another install) on
    ``threads`` threads: a benchmark run from a snapshot of the repository measures that snapshot."""
    path = os.pathsep.join([str(ROOT)] + ([os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
    return dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), PYTHONPATH=path)


def run_config(recipe: Path, split: dict, epochs: int, threads: int, overrides: dict | None = None) -> dict:
    """The recipe with its data section replaced by the split files and the budget set."""
    config = yaml.safe_load(recipe.read_text())
    data = config.setdefault("data", {})
    for key in ("path", "split_file", "val_fraction", "test_fraction"):
        data.pop(key, None)
    data.update(train_path=str(split["train"]), val_path=str(split["val"]), test_path=str(split["test"]),
                energy_key=split["energy_key"], forces_key=split["forces_key"], max_structures=None)
    training = config.setdefault("training", {})
    training.update(epochs=epochs, num_threads=threads, progress=False)
    for section, values in (overrides or {}).items():
        config.setdefault(section, {}).update(values)
    return config


def model_constructor_config(model: dict) -> dict:
    """Every constructor argument of the recipe's model, defaults included (less those the trainer
    sets from the data), so a stored result is not reused after a default changes."""
    from equiformer_lite.models import MODELS

    kwargs = {k: v for k, v in model.items() if k != "type"}
    config = dict(MODELS[model["type"]](species=["C", "H", "O"], **kwargs).config)
    for key in ("scale", "shift", "atomic_energies", "avg_num_neighbors", "species", "dtype"):
        config.pop(key, None)
    return config


def package_sha256() -> str:
    """Hash of this checkout's package source (every ``.py`` under ``equiformer_lite/``): a stored
    result of our models is not reused after the code that trained it changed."""
    digest = hashlib.sha256()
    for path in sorted((ROOT / "equiformer_lite").rglob("*.py")):
        digest.update(str(path.relative_to(ROOT)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()


def learning_curve(log_csv: Path) -> list[dict]:
    """Validation errors per epoch and cumulative training time (sum of epoch times, no validation)."""
    curve, elapsed = [], 0.0
    with open(log_csv) as fh:
        for row in csv.DictReader(fh):
            elapsed += float(row["epoch_time_s"])
            curve.append({"epoch": int(float(row["epoch"])), "train_time_s": elapsed,
                          "val_forces_mae_meV_per_A": 1e3 * float(row["val_forces_mae"]),
                          "val_energy_mae_meV": 1e3 * float(row["val_energy_mae"]),
                          "clipped": float(row["clipped"]), "steps": float(row["steps"])})
    return curve


def train(model: str, split: dict, epochs: int, workdir: Path, threads: int = 1, overrides: dict | None = None) -> dict:
    """Train one of our models with ``equiformer-lite train``; returns the model path and curve."""
    if model not in RECIPES:
        raise ValueError(f"unknown model {model!r}: choose one of {sorted(RECIPES)}")
    config = run_config(RECIPES[model], split, epochs, threads, overrides)
    trained = train_config(config, workdir, threads)
    trained["settings"]["recipe"] = str(RECIPES[model].relative_to(ROOT))
    return trained


def default_job_config(split: dict, epochs: int, threads: int) -> dict:
    """The README job's recipe (the package's built-in model and training defaults) on ``split``."""
    return {"data": {"train_path": str(split["train"]), "val_path": str(split["val"]), "test_path": str(split["test"]),
                     "energy_key": split["energy_key"], "forces_key": split["forces_key"]},
            "training": {"epochs": epochs, "num_threads": threads, "progress": False}}


def train_config(config: dict, workdir: Path, threads: int = 1) -> dict:
    """Run ``equiformer-lite train`` on ``config`` in a fresh ``workdir``; returns the model path and curve."""
    if workdir.exists():
        shutil.rmtree(workdir)  # never score a model left by an earlier, different run
    workdir.mkdir(parents=True)
    config = dict(config, output_dir=str(workdir / "run"))
    config_path = workdir / "config.yaml"
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    env = checkout_env(threads)
    start = time.perf_counter()
    with open(workdir / "train.log", "w") as log:
        subprocess.run([sys.executable, "-m", "equiformer_lite.cli", "train", str(config_path)],
                       env=env, check=True, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    wall = time.perf_counter() - start
    run = workdir / "run"
    curve = learning_curve(run / "log.csv")
    return {"model": str(run / "model.pt"), "python": sys.executable, "calculator": "equiformer", "curve": curve,
            "process_wall_s": wall, "train_time_s": curve[-1]["train_time_s"],
            "clipped_fraction": curve[-1]["clipped"] / max(curve[-1]["steps"], 1.0),
            "settings": {"model": config.get("model", "built-in defaults"), "training": config["training"]}}
