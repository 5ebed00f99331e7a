"""Species embedding and edge geometry."""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

__all__ = ["SpeciesEmbedding", "EdgeSphericalHarmonics", "species_one_hot"]


def species_one_hot(species: torch.Tensor, num_species: int, dtype: torch.dtype) -> torch.Tensor:
    """``[N]`` species index -> ``[N, num_species]`` one-hot rows in ``dtype``.

    A comparison with ``arange`` rather than ``torch.nn.functional.one_hot``, which reads the
    largest index back to the host to check it (a sync in every forward; the index is checked
    where inputs enter instead)."""
    classes = torch.arange(num_species, device=species.device)  # [S]
    return (species[:, None] == classes).to(dtype)


class SpeciesEmbedding(nn.Module):
    r"""One-hot species -> ``channels x 0e`` scalar features through an equivariant linear.

    Shapes: ``[N]`` species index (0 .. num_species-1) -> ``[N, channels]``.
    """

    def __init__(self, num_species: int, channels: int) -> None:
        super().__init__()
        if num_species < 1:
            raise ValueError(f"num_species must be at least 1, got {num_species}")
        self.num_species = int(num_species)
        self.irreps_in = o3.Irreps(f"{num_species}x0e")
        self.irreps_out = o3.Irreps(f"{channels}x0e")
        self.linear = o3.Linear(self.irreps_in, self.irreps_out)

    def forward(self, species: torch.Tensor) -> torch.Tensor:
        dtype = self.linear.weight.dtype
        one_hot = species_one_hot(species, self.num_species, dtype)  # [N, num_species]
        return self.linear(one_hot)  # [N, channels]


class EdgeSphericalHarmonics(nn.Module):
    r"""Real spherical harmonics :math:`Y^{(l)}(\hat r_{ij})`, :math:`l = 0 \dots l_{max}`.

    ``parity=True`` gives the natural parity :math:`(-1)^l` (0e + 1o + 2e + ...), so a model is
    O(3)-equivariant; ``parity=False`` labels every degree even (0e + 1e + 2e + ...), which lets the
    network build pseudo-scalars from vectors and so tell a structure from its mirror image
    (SO(3) only), as NequIP's ``parity`` switch does.

    Shapes: ``[E, 3]`` edge vectors -> ``[E, (lmax + 1)^2]``.
    """

    def __init__(self, lmax: int, *, parity: bool = True) -> None:
        super().__init__()
        if lmax < 0:
            raise ValueError(f"lmax must be non-negative, got {lmax}")
        self.lmax = int(lmax)
        self.irreps_in = o3.Irreps("1o")
        self.irreps_out = o3.Irreps.spherical_harmonics(lmax, p=-1 if parity else 1)
        self.sh = o3.SphericalHarmonics(
            o3.Irreps.spherical_harmonics(lmax), normalize=True, normalization="component"
        )

    def forward(self, vectors: torch.Tensor) -> torch.Tensor:
        return self.sh(vectors)  # [E, (lmax+1)^2]
