"""Per-atom readouts: scalar energies, their scale/shift/reference energies, a direct force head."""

from __future__ import annotations

from typing import Sequence

import torch
from e3nn import o3
from torch import nn

from .dense import DenseLinear

__all__ = ["AtomicEnergyReadout", "PyramidalReadout", "ScaleShiftEnergies", "DirectForceHead"]


class AtomicEnergyReadout(nn.Module):
    r"""Per-atom energy from the invariant (0e) channels: ``Linear -> SiLU -> Linear``.

    The first :class:`e3nn.o3.Linear` only connects 0e inputs to 0e outputs, so the result is
    invariant by construction.

    Shapes: ``[N, irreps_in.dim]`` -> ``[N]``.
    """

    def __init__(self, irreps_in, hidden: int = 16) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        if not any(ir == o3.Irrep("0e") for _, ir in self.irreps_in):
            raise ValueError(f"energy readout needs 0e features, got {self.irreps_in}")
        self.irreps_out = o3.Irreps("0e")
        self.linear1 = DenseLinear(self.irreps_in, o3.Irreps(f"{hidden}x0e"))
        self.linear2 = DenseLinear(o3.Irreps(f"{hidden}x0e"), self.irreps_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear2(nn.functional.silu(self.linear1(x))).squeeze(-1)  # [N]


class PyramidalReadout(nn.Module):
    r"""The JAT/NeuralIL pyramidal head (thesis 3.1.4): dense layers of decreasing width, each
    followed by Swish-1 and layer normalisation, then one linear output per atom.

    Default widths ``(64, 32, 16, 16)``. Acts on invariant features only.

    Shapes: ``[N, channels]`` -> ``[N]``.
    """

    def __init__(self, channels: int, widths: Sequence[int] = (64, 32, 16, 16), *, layer_norm: bool = True) -> None:
        super().__init__()
        self.irreps_in, self.irreps_out = o3.Irreps(f"{channels}x0e"), o3.Irreps("0e")
        widths = list(widths)
        if not all(isinstance(w, int) and w >= 1 for w in widths):
            raise ValueError(f"readout widths must be positive integers, got {widths}")
        layers: list[nn.Module] = []
        for width_in, width_out in zip([channels] + widths[:-1], widths):
            layers += [nn.Linear(width_in, width_out), nn.SiLU()]
            if layer_norm:
                layers.append(nn.LayerNorm(width_out))
        layers.append(nn.Linear(widths[-1] if widths else channels, 1))
        self.mlp = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mlp(x).squeeze(-1)  # [N]


class ScaleShiftEnergies(nn.Module):
    r""":math:`E_i = \sigma\,\hat e_i + \mu + E^{0}_{Z_i}`: scale, shift and per-element reference
    energies (E0s) in eV. All three are buffers: set them from data statistics, they are not trained.

    ``learned_species_shift=True`` adds a trained per-element correction :math:`\delta_Z` (eV,
    starting at 0) to the shift of :meth:`relative_to_isolated`. A single shift :math:`\mu` is one
    binding energy per atom for every element; the data's differ by element (measured on the
    default job: ethanol and water boxes off by +6 and -273 meV/atom without it), and a dedicated
    parameter gets full-size Adam steps where the network would learn such offsets slowly.

    Shapes: ``[N]`` raw energies, ``[N]`` species index -> ``[N]``.
    """

    def __init__(self, num_species: int, *, scale: float = 1.0, shift: float = 0.0, learned_species_shift: bool = False) -> None:
        super().__init__()
        self.irreps_in = self.irreps_out = o3.Irreps("0e")  # raw energy -> energy, per atom
        self.register_buffer("scale", torch.tensor(float(scale)))
        self.register_buffer("shift", torch.tensor(float(shift)))
        self.register_buffer("reference_energies", torch.zeros(num_species))  # [num_species], eV
        self.species_shift = nn.Parameter(torch.zeros(num_species)) if learned_species_shift else None  # [num_species], eV

    def forward(self, raw: torch.Tensor, species: torch.Tensor) -> torch.Tensor:
        return self.scale * raw + self.shift + self.reference_energies[species]  # [N]

    def relative_to_isolated(
        self, raw: torch.Tensor, raw_isolated: torch.Tensor, coordination: torch.Tensor, species: torch.Tensor
    ) -> torch.Tensor:
        r"""Per-atom energies that are exactly :math:`E^0` for an atom with no neighbour:

        .. math:: E_i = E^0_{Z_i} + \sigma\,\big(\hat e_i - \hat e^{\rm iso}_{Z_i}\big) + (\mu + \delta_{Z_i})\,\big(1 - e^{-n_i}\big)

        where :math:`\hat e^{\rm iso}_Z` is the raw readout of a lone atom of species Z and
        :math:`n_i = \sum_j u(r_{ij})` the smooth coordination number (the envelope sum), so the
        shift :math:`\mu` (plus the learned :math:`\delta_Z`, if any) switches on smoothly as neighbours come in. A readout of the bare
        species embedding added on top of E0 would end dissociation curves at the wrong asymptote.

        Shapes: ``raw [N]``, ``raw_isolated [num_species]``, ``coordination [N]``, ``species [N]`` -> ``[N]``.
        """
        shift = self.shift if self.species_shift is None else self.shift + self.species_shift[species]  # [] or [N]
        return (
            self.scale * (raw - raw_isolated[species])
            + shift * (1.0 - torch.exp(-coordination))
            + self.reference_energies[species]
        )  # [N]


class DirectForceHead(nn.Module):
    r"""A **non-conservative** per-atom force: one 1o vector from the features, as the
    SE(3)-Transformer thesis trained. It is rotation-equivariant but not the gradient of any
    energy, so molecular dynamics with it does not conserve energy; prefer the autograd forces.

    Shapes: ``[N, irreps_in.dim]`` -> ``[N, 3]``.
    """

    def __init__(self, irreps_in) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        vectors = [ir for _, ir in self.irreps_in if ir.l == 1]
        if not vectors:
            raise ValueError(f"a direct force head needs l=1 features, got {self.irreps_in}")
        # A true vector is 1o; with parity off every degree is labelled even, so 1e plays its part.
        self.irreps_out = o3.Irreps(f"1x{vectors[0]}")
        self.linear = o3.Linear(self.irreps_in, self.irreps_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)  # [N, 3]
