"""The activation functions of the package's layers, by name: one table for every module.

SiLU is smooth (C-infinity), so autograd forces are continuous; ReLU has a kink at 0 that makes
forces jump wherever a hidden unit changes sign (offered for papers that used it).
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

__all__ = ["ACTIVATIONS", "get_activation", "Activation"]

ACTIVATIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "silu": nn.functional.silu,
    "relu": nn.functional.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
}


def get_activation(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The activation function called ``name``; ``ValueError`` listing the choices otherwise."""
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}, choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[name]


class Activation(nn.Module):
    """An activation of :data:`ACTIVATIONS` as a module (for ``nn.Sequential``). Shapes: any -> same."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name, self.fn = name, get_activation(name)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name
