"""The plot of a simulation's log: temperature, energies, and for periodic cells pressure and volume."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

__all__ = ["plot_md_log"]


def plot_md_log(rows: Sequence[dict], path: Path, title: str = "") -> None:
    """Panels of T, E_pot/E_tot (and P, V when logged) against time in ps, written as a PNG."""
    from ..train.plots import _pyplot

    plt = _pyplot()
    time = [row["time_ps"] for row in rows]
    panels = [("temperature_K", "T (K)"), (("epot_eV", "etot_eV"), "energy (eV)")]
    if "pressure_GPa" in rows[0]:
        panels += [("pressure_GPa", "P (GPa)"), ("volume_A3", "V (Å³)")]
    fig, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.4))
    for ax, (keys, label) in zip(axes, panels):
        for key in (keys if isinstance(keys, tuple) else (keys,)):
            ax.plot(time, [row[key] for row in rows], label=key.split("_")[0])
        ax.set_xlabel("time (ps)"), ax.set_ylabel(label)
        if isinstance(keys, tuple):
            ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
