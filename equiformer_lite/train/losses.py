"""Loss functions of energies, forces, stress (JAT thesis eqs. 3.4-3.6) and per-atom energies (A2I)."""

from __future__ import annotations

import math
from typing import Callable

import torch
from torch import nn

from ..data import keys

__all__ = ["LOSSES", "log_cosh", "PotentialLoss"]


def log_cosh(error: torch.Tensor, alpha: float) -> torch.Tensor:
    r"""Log-cosh loss with scale :math:`\alpha` (thesis eqs. 3.4-3.6), elementwise:

    .. math:: \alpha\, \log\cosh(x / \alpha) = \alpha\,\big[\mathrm{softplus}(2x/\alpha) - \log 2\big] - x

    The softplus form never overflows (``cosh`` does for :math:`|x|/\alpha > 710`). It is quadratic,
    :math:`x^2 / 2\alpha`, for :math:`|x| \ll \alpha` and linear, :math:`|x| - \alpha \log 2`, beyond.
    """
    return alpha * (nn.functional.softplus(2.0 * error / alpha) - math.log(2.0)) - error


def _mse(error: torch.Tensor, alpha: float) -> torch.Tensor:
    return error.square()


def _huber(error: torch.Tensor, alpha: float) -> torch.Tensor:
    return nn.functional.huber_loss(error, torch.zeros_like(error), reduction="none", delta=alpha)


LOSSES: dict[str, Callable[[torch.Tensor, float], torch.Tensor]] = {"mse": _mse, "huber": _huber, "logcosh": log_cosh}


class PotentialLoss(nn.Module):
    r"""Weighted sum of per-atom energy, force, stress and per-atom energy-label losses.

    .. math::
        \mathcal L = w_E \big\langle \ell\big((\hat E - E)/N\big) \big\rangle_{\rm structures}
        + w_F \big\langle \ell(\hat F - F) \big\rangle_{\rm atoms, xyz}
        + w_S \big\langle \ell(\hat\sigma - \sigma) \big\rangle_{\rm structures, 3\times 3}
        + w_\epsilon \big\langle \ell(\hat\epsilon_i - \epsilon_i) \big\rangle_{\rm atoms}

    where :math:`\ell` is the MSE, Huber (``alpha`` = its delta) or log-cosh (``alpha`` = its scale)
    loss. Terms whose labels are absent from the batch are skipped; a stress label is only used
    for structures that carry one. The last term fits per-atom energies :math:`\epsilon_i`
    (``atomic_energies``, e.g. ASE's ``energies`` of the synthetic A2I data; the A2I paper trains
    on this term alone); it is off by default (``atomic_energies_weight=0``), and when it is on a
    batch without per-atom labels is an error rather than a silently skipped term.
    """

    def __init__(
        self,
        kind: str = "mse",
        *,
        energy_weight: float = 1.0,
        forces_weight: float = 10.0,
        stress_weight: float = 1.0,
        alpha: float = 0.1,
        atomic_energies_weight: float = 0.0,
    ) -> None:
        super().__init__()
        if kind not in LOSSES:
            raise ValueError(f"unknown loss '{kind}', choose one of {sorted(LOSSES)}")
        for name, w in (
            ("energy_weight", energy_weight),
            ("forces_weight", forces_weight),
            ("stress_weight", stress_weight),
            ("atomic_energies_weight", atomic_energies_weight),
        ):
            if not (w >= 0 and math.isfinite(w)):
                raise ValueError(f"{name} must be a finite number >= 0, got {w}")
        if not alpha > 0:
            raise ValueError(f"alpha must be positive, got {alpha}")
        self.kind, self.fn, self.alpha = kind, LOSSES[kind], float(alpha)
        self.weights = {
            keys.ENERGY: energy_weight,
            keys.FORCES: forces_weight,
            keys.STRESS: stress_weight,
            keys.ATOMIC_ENERGIES: atomic_energies_weight,
        }

    def forward(self, outputs: dict[str, torch.Tensor], batch) -> tuple[torch.Tensor, dict[str, float]]:
        """Returns the total loss (a scalar tensor) and each term's value."""
        terms: dict[str, torch.Tensor] = {}
        num_atoms = batch[keys.NUM_ATOMS].to(outputs[keys.ENERGY].dtype)  # [B]
        if self.weights[keys.ENERGY] > 0 and keys.ENERGY in batch:
            error = (outputs[keys.ENERGY] - batch[keys.ENERGY].to(num_atoms.dtype)) / num_atoms  # [B], eV/atom
            terms[keys.ENERGY] = self.fn(error, self.alpha).mean()
        if self.weights[keys.FORCES] > 0 and keys.FORCES in batch:
            error = outputs[keys.FORCES] - batch[keys.FORCES].to(num_atoms.dtype)  # [N, 3]
            terms[keys.FORCES] = self.fn(error, self.alpha).mean()
        if self.weights[keys.STRESS] > 0 and keys.STRESS in batch and keys.STRESS in outputs:
            error = outputs[keys.STRESS] - batch[keys.STRESS].to(num_atoms.dtype)  # [B, 3, 3]
            mask = batch[keys.STRESS_WEIGHT].to(num_atoms.dtype) if keys.STRESS_WEIGHT in batch else torch.ones_like(num_atoms)
            if mask.sum() > 0:  # padded (molecule) rows carry no stress information
                terms[keys.STRESS] = (self.fn(error, self.alpha).mean(dim=(1, 2)) * mask).sum() / mask.sum()
        if self.weights[keys.ATOMIC_ENERGIES] > 0:
            if keys.ATOMIC_ENERGIES not in batch:
                raise ValueError(
                    f"atomic_energies_weight is {self.weights[keys.ATOMIC_ENERGIES]} but the batch has no per-atom "
                    f"energy labels ('{keys.ATOMIC_ENERGIES}', read from ASE's per-atom 'energies'): use data with "
                    "per-atom energies or set atomic_energies_weight to 0"
                )
            error = outputs[keys.ATOMIC_ENERGIES] - batch[keys.ATOMIC_ENERGIES].to(num_atoms.dtype)  # [N], eV
            terms[keys.ATOMIC_ENERGIES] = self.fn(error, self.alpha).mean()
        if not terms:
            raise ValueError(
                "the batch carries none of the labels the loss is weighted on (energy, forces, stress, atomic_energies)"
            )
        total = sum(self.weights[k] * v for k, v in terms.items())
        return total, {k: float(v.detach()) for k, v in terms.items()}


