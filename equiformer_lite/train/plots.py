"""Learning curves and parity plots (matplotlib, written as PNG files)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["plot_learning_curve", "plot_parity"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; works without a display
    import matplotlib.pyplot as plt

    return plt


def plot_learning_curve(history: Sequence[dict], path: Path) -> None:
    """Training and validation loss, and validation force/energy MAE, per epoch."""
    plt = _pyplot()
    epochs = [row["epoch"] for row in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    axes[0].semilogy(epochs, [row.get("train_loss", np.nan) for row in history], label="train")
    axes[0].semilogy(epochs, [row.get("val_loss", np.nan) for row in history], label="validation (EMA)")
    axes[0].set_xlabel("epoch"), axes[0].set_ylabel("loss"), axes[0].legend()
    for key, label in (("val_forces_mae", "force MAE (eV/Å)"), ("val_energy_per_atom_mae", "energy MAE (eV/atom)")):
        values = [row.get(key, np.nan) for row in history]
        if np.isfinite(values).any():
            axes[1].semilogy(epochs, values, label=label)
    axes[1].set_xlabel("epoch"), axes[1].set_title("validation"), axes[1].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_parity(true: np.ndarray, predicted: np.ndarray, path: Path, *, quantity: str, unit: str) -> None:
    """Predicted against reference values, with the MAE and RMSE in the title."""
    plt = _pyplot()
    true, predicted = np.ravel(true), np.ravel(predicted)
    mae = float(np.mean(np.abs(predicted - true)))
    rmse = float(np.sqrt(np.mean((predicted - true) ** 2)))
    fig, ax = plt.subplots(figsize=(4.4, 4.2))
    ax.scatter(true, predicted, s=4, alpha=0.5)
    low, high = float(min(true.min(), predicted.min())), float(max(true.max(), predicted.max()))
    ax.plot([low, high], [low, high], "k--", lw=0.8)
    ax.set_xlabel(f"reference {quantity} ({unit})"), ax.set_ylabel(f"predicted {quantity} ({unit})")
    ax.set_title(f"{quantity}: MAE {mae:.3g}, RMSE {rmse:.3g} {unit}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
