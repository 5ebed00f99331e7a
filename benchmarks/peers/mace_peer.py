"""MACE as a peer: its own virtual environment, its documented molecular settings, its learning curve.

mace-torch 0.3.16 pins ``e3nn==0.4.4`` (this project needs >= 0.5), so it lives in a virtual
environment of its own, created once and cached in ``$EQUIFORMER_PEERS_DIR`` (default
``~/.cache/equiformer_lite/peers``). The settings are MACE's documented mid-size rMD17 ones:
64 channels, L = 1, correlation 3, r_max 5 Å, lr 0.01, EMA 0.99, energy/force weights 10/1000,
then a second stage (MACE's "SWA" stage) over the last 20 % of the epochs with weights 1000/100,
``--eval_interval 1`` so the stage-two checkpoint is written and scored.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

MACE_VERSION = "0.3.16"
TORCH_VERSION = "2.13.0"


def peers_dir() -> Path:
    return Path(os.environ.get("EQUIFORMER_PEERS_DIR", Path.home() / ".cache" / "equiformer_lite" / "peers"))


def ensure_venv() -> Path:
    """The python of MACE's virtual environment, created (about 3 minutes) if missing."""
    venv = peers_dir() / f"mace-{MACE_VERSION}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if marker.exists():
        return python
    print(f"creating MACE's virtual environment in {venv} (once, a few minutes)", flush=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    subprocess.run(pip + [f"torch=={TORCH_VERSION}"], check=True)
    constraints = venv / "constraints.txt"
    constraints.write_text(f"torch=={TORCH_VERSION}\n")  # never let mace-torch pull another torch
    subprocess.run(pip + [f"mace-torch=={MACE_VERSION}", "-c", str(constraints)], check=True)
    marker.write_text(MACE_VERSION)
    return python


def settings(epochs: int) -> dict:
    """The MACE command-line settings of the benchmark (recorded in the result)."""
    swa_start = max(epochs * 4 // 5, 1)  # --start_swa 0 crashes at the end (no stage-one checkpoint)
    return {
        "model": "MACE", "num_channels": 64, "max_L": 1, "correlation": 3, "r_max": 5.0,
        "batch_size": 5, "valid_batch_size": 20, "max_num_epochs": epochs, "E0s": "average",
        "default_dtype": "float32", "seed": 1, "forces_weight": 1000, "energy_weight": 10, "lr": 0.01,
        "scheduler_patience": 5, "ema": True, "ema_decay": 0.99, "error_table": "TotalMAE", "eval_interval": 1,
        "swa": True, "start_swa": swa_start, "swa_energy_weight": 1000, "swa_forces_weight": 100,
    }


def command(python: Path, name: str, split: dict, epochs: int) -> list[str]:
    args = [str(python), "-m", "mace.cli.run_train", "--name", name, "--device", "cpu",
            "--train_file", str(split["train"]), "--valid_file", str(split["val"]), "--test_file", str(split["test"]),
            "--energy_key", split["energy_key"], "--forces_key", split["forces_key"]]
    for key, value in settings(epochs).items():
        if value is True:
            args.append(f"--{key}")
        else:
            args += [f"--{key}", str(value)]
    return args


def learning_curve(results_dir: Path) -> list[dict]:
    """Validation force MAE per epoch and cumulative training time (sum of MACE's own per-step times)."""
    logs = sorted(results_dir.glob("*_train.txt"))
    if not logs:
        raise FileNotFoundError(f"no MACE training log (*_train.txt) in {results_dir}")
    step_time: dict[int, float] = {}
    curve = []
    for line in logs[-1].read_text().splitlines():
        row = json.loads(line)
        if row.get("mode") == "opt":
            step_time[row["epoch"]] = step_time.get(row["epoch"], 0.0) + float(row["time"])
        elif row.get("mode") == "eval" and row.get("epoch") is not None:
            curve.append({"epoch": int(row["epoch"]) + 1, "val_forces_mae_meV_per_A": 1e3 * float(row["mae_f"]),
                          "val_energy_mae_meV": 1e3 * float(row["mae_e"])})
    elapsed = 0.0
    for point in curve:
        elapsed += step_time.get(point["epoch"] - 1, 0.0)
        point["train_time_s"] = elapsed
    return curve


def train(split: dict, epochs: int, workdir: Path, threads: int = 1) -> dict:
    """Train MACE on the split; returns the stage-two model path, the curve and the wall time."""
    python = ensure_venv()
    workdir.mkdir(parents=True, exist_ok=True)
    name = f"mace_e{epochs}"
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    start = time.perf_counter()
    with open(workdir / "train.log", "w") as log:
        subprocess.run(command(python, name, split, epochs), cwd=workdir, env=env, check=True, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    model = workdir / f"{name}_stagetwo.model"
    if not model.exists():
        raise FileNotFoundError(f"MACE wrote no stage-two model ({model}); see {workdir / 'train.log'}")
    curve = learning_curve(workdir / "results")
    return {"model": str(model), "python": str(python), "calculator": "mace", "curve": curve,
            "process_wall_s": wall, "train_time_s": curve[-1]["train_time_s"] if curve else None,
            "settings": settings(epochs), "version": MACE_VERSION}
