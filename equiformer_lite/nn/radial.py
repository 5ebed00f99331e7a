"""Radial basis functions and the smooth cutoff envelope."""

from __future__ import annotations

import math

import torch
from e3nn import o3
from torch import nn

__all__ = ["BesselBasis", "PolynomialEnvelope", "RadialEmbedding"]


class BesselBasis(nn.Module):
    r"""Bessel radial basis of DimeNet:

    .. math:: B_n(r) = \sqrt{2 / r_c}\; \frac{\sin(n \pi r / r_c)}{r}, \qquad n = 1 \dots N.

    Parameters
    ----------
    cutoff : :math:`r_c`, Å.
    num_basis : :math:`N`.
    trainable : learn the frequencies :math:`n\pi` (initialised as above).

    Shapes: ``[E]`` lengths -> ``[E, num_basis]``.
    """

    def __init__(self, cutoff: float, num_basis: int = 8, *, trainable: bool = False) -> None:
        super().__init__()
        if not cutoff > 0:
            raise ValueError(f"cutoff must be positive, got {cutoff}")
        if num_basis < 1:
            raise ValueError(f"num_basis must be at least 1, got {num_basis}")
        self.cutoff = float(cutoff)
        self.num_basis = int(num_basis)
        self.irreps_in, self.irreps_out = o3.Irreps("0e"), o3.Irreps(f"{num_basis}x0e")  # lengths -> features
        freqs = math.pi * torch.arange(1, num_basis + 1, dtype=torch.get_default_dtype())
        if trainable:
            self.frequencies = nn.Parameter(freqs)
        else:
            self.register_buffer("frequencies", freqs)

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:
        x = lengths.unsqueeze(-1) / self.cutoff  # [E, 1]
        prefactor = math.sqrt(2.0 / self.cutoff)
        return prefactor * torch.sin(self.frequencies * x) / lengths.unsqueeze(-1)  # [E, num_basis]

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, num_basis={self.num_basis}"


class PolynomialEnvelope(nn.Module):
    r"""Smooth cutoff of DimeNet/NequIP, with :math:`d = r / r_c`:

    .. math::
        u(d) = 1 - \frac{(p+1)(p+2)}{2} d^p + p(p+2) d^{p+1} - \frac{p(p+1)}{2} d^{p+2}
        \quad (d < 1), \qquad u(d) = 0 \quad (d \ge 1).

    :math:`u` and its first two derivatives vanish at :math:`r_c`, so anything multiplied by it
    brings energy and forces to zero continuously as an edge leaves the cutoff.

    Shapes: ``[E]`` lengths -> ``[E]``.
    """

    def __init__(self, cutoff: float, p: int = 6) -> None:
        super().__init__()
        if not cutoff > 0:
            raise ValueError(f"cutoff must be positive, got {cutoff}")
        if p < 2:
            raise ValueError(f"envelope exponent p must be at least 2 for a smooth force, got {p}")
        self.cutoff = float(cutoff)
        self.p = int(p)
        self.irreps_in = self.irreps_out = o3.Irreps("0e")  # lengths -> envelope

    def forward(self, lengths: torch.Tensor) -> torch.Tensor:
        # Evaluated in the factored form u(d) = (1 - d)^3 sum_{k<p} T_{k+1} d^k, T_n = n(n+1)/2
        # (the polynomial has a triple root at d = 1 and these positive coefficients). The
        # expanded form loses all precision near the cutoff: in float32, 1 - 28 d^6 + 48 d^7 - 21 d^8
        # carries an absolute error ~1e-6, which is the whole value a few mÅ inside r_c (and it can
        # even turn negative). The factored form keeps full relative precision up to r_c.
        d = lengths / self.cutoff
        q = torch.full_like(d, self.p * (self.p + 1) / 2)
        for k in range(self.p - 2, -1, -1):
            q = q * d + (k + 1) * (k + 2) / 2
        u = (1.0 - d) ** 3 * q
        return torch.where(d < 1.0, u, torch.zeros_like(u))

    def extra_repr(self) -> str:
        return f"cutoff={self.cutoff}, p={self.p}"


class RadialEmbedding(nn.Module):
    r"""Edge-length features :math:`B_n(r)\,u(r)`: a radial basis times the cutoff envelope.

    Returns both the features ``[E, num_basis]`` and the envelope ``[E]`` (the attention uses it
    inside its normalisation).
    """

    def __init__(self, cutoff: float, num_basis: int = 8, *, envelope_p: int = 6, trainable: bool = False):
        super().__init__()
        self.basis = BesselBasis(cutoff, num_basis, trainable=trainable)
        self.envelope = PolynomialEnvelope(cutoff, envelope_p)
        self.irreps_in, self.irreps_out = o3.Irreps("0e"), self.basis.irreps_out

    def forward(self, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        envelope = self.envelope(lengths)  # [E]
        return self.basis(lengths) * envelope.unsqueeze(-1), envelope  # [E, num_basis], [E]
