"""Error metrics accumulated over a data set (energies, forces, stress, per-atom energies)."""

from __future__ import annotations

import math
from collections import defaultdict

import torch
from torch_geometric.utils import scatter

from ..data import keys

__all__ = ["MetricAccumulator"]


class MetricAccumulator:
    r"""Sums of errors over batches; :meth:`compute` turns them into metrics.

    - energy: MAE and RMSE per structure (eV) and per atom (eV/atom, the structure's error / N);
    - forces: MAE and RMSE over all components (eV/Å);
    - stress: MAE over all components (eV/Å³);
    - per-atom energies (when the data carry them; the A2I paper's eqs. 8-11, averaged over
      structures): MAE :math:`\langle \sum_i |\delta\epsilon_i| / n \rangle`, MME
      :math:`\langle \max_i |\delta\epsilon_i| \rangle`, NMAE
      :math:`\langle \sum_i |\delta\epsilon_i| / \sum_i |\epsilon_i - \bar\epsilon| \rangle` and MAPE
      :math:`\langle \sum_i |\delta\epsilon_i| / \sum_i |\epsilon_i| \rangle`; each also as
      ``atomic_*_std``, the standard deviation over structures (the paper's ± in Table I).
    """

    def __init__(self) -> None:
        self.sums: dict[str, float] = defaultdict(float)
        self.counts: dict[str, int] = defaultdict(int)

    def _add(self, name: str, values: torch.Tensor) -> None:
        self.sums[name] += float(values.sum())
        self.counts[name] += values.numel()

    def _add_per_structure(self, name: str, values: torch.Tensor) -> None:
        """``values [B]``, one per structure: their mean and (via ``name_sq``) their spread."""
        self._add(name, values)
        self._add(f"{name}_sq", values.square())

    @torch.no_grad()
    def update(self, outputs: dict[str, torch.Tensor], batch) -> None:
        num_atoms = batch[keys.NUM_ATOMS].double()
        if keys.ENERGY in batch:
            error = outputs[keys.ENERGY].detach().double() - batch[keys.ENERGY].double()  # [B]
            self._add("energy_abs", error.abs())
            self._add("energy_sq", error.square())
            self._add("energy_per_atom_abs", (error / num_atoms).abs())
            self._add("energy_per_atom_sq", (error / num_atoms).square())
        if keys.FORCES in batch and keys.FORCES in outputs:
            error = outputs[keys.FORCES].detach().double() - batch[keys.FORCES].double()  # [N, 3]
            self._add("forces_abs", error.abs())
            self._add("forces_sq", error.square())
        if keys.STRESS in batch and keys.STRESS in outputs:
            error = (outputs[keys.STRESS].detach().double() - batch[keys.STRESS].double()).abs()  # [B, 3, 3]
            if keys.STRESS_WEIGHT in batch:
                error = error[batch[keys.STRESS_WEIGHT] > 0]  # only structures with a real label
            self._add("stress_abs", error)
        if keys.ATOMIC_ENERGIES in batch:
            self._update_atomic(outputs[keys.ATOMIC_ENERGIES].detach().double(), batch)

    def _update_atomic(self, predicted: torch.Tensor, batch) -> None:
        true = batch[keys.ATOMIC_ENERGIES].double()  # [N]
        index = batch[keys.BATCH]
        size = int(batch[keys.NUM_ATOMS].numel())
        abs_err = (predicted - true).abs()
        sum_abs = scatter(abs_err, index, dim=0, dim_size=size, reduce="sum")  # [B]
        mean_true = scatter(true, index, dim=0, dim_size=size, reduce="mean")  # [B]
        spread = scatter((true - mean_true[index]).abs(), index, dim=0, dim_size=size, reduce="sum")
        magnitude = scatter(true.abs(), index, dim=0, dim_size=size, reduce="sum")
        self._add_per_structure("atomic_mae", sum_abs / batch[keys.NUM_ATOMS].double())
        self._add_per_structure("atomic_mme", scatter(abs_err, index, dim=0, dim_size=size, reduce="max"))
        self._add_per_structure("atomic_nmae", sum_abs / spread)
        self._add_per_structure("atomic_mape", sum_abs / magnitude)

    def compute(self) -> dict[str, float]:
        mean = {name: self.sums[name] / self.counts[name] for name in self.sums if self.counts[name]}
        metrics: dict[str, float] = {}
        for prefix in ("energy", "energy_per_atom", "forces"):
            if f"{prefix}_abs" in mean:
                metrics[f"{prefix}_mae"] = mean[f"{prefix}_abs"]
                metrics[f"{prefix}_rmse"] = math.sqrt(mean[f"{prefix}_sq"])
        if "stress_abs" in mean:
            metrics["stress_mae"] = mean["stress_abs"]
        for name in ("atomic_mae", "atomic_mme", "atomic_nmae", "atomic_mape"):
            if name in mean:
                metrics[name] = mean[name]
                count = self.counts[name]
                variance = max(mean[f"{name}_sq"] - mean[name] ** 2, 0.0) * count / max(count - 1, 1)
                metrics[f"{name}_std"] = math.sqrt(variance)  # over structures (sample std)
        return metrics
