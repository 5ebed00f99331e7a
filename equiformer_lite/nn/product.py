"""Channel-wise tensor powers of node features: raise the body order of aggregated messages."""

from __future__ import annotations

from typing import Optional

import torch
from e3nn import o3
from torch import nn

from .dense import DenseChannelwiseProduct, DenseLinear
from .irreps_tools import product_paths
from .self_interaction import species_linear

__all__ = ["NodeTensorSquare"]


def _channelwise_product(irreps1: o3.Irreps, irreps2: o3.Irreps, allowed: set, symmetric: bool) -> DenseChannelwiseProduct:
    """e3nn ``"uuu"`` tensor product (each channel with itself, one weight per channel and path)
    of every pair of degrees whose product reaches an irrep in ``allowed``."""
    mid, instructions = product_paths(irreps1, irreps2, allowed, "uuu", symmetric=symmetric)
    return DenseChannelwiseProduct(irreps1, irreps2, o3.Irreps(mid), instructions)


class NodeTensorSquare(nn.Module):
    r"""Channel-wise Clebsch-Gordan powers of a node's features, mixed by a linear layer:

    .. math::
        y_i = W_1 a_i, \qquad p^{(2)}_i = y_i \otimes_{\rm ch} y_i, \qquad
        p^{(3)}_i = \big(W_2\, p^{(2)}_i\big) \otimes_{\rm ch} y_i, \qquad
        \mathrm{out}_i = W_3 \big[p^{(2)}_i \oplus p^{(3)}_i\big]

    where :math:`\otimes_{\rm ch}` is e3nn's ``"uuu"`` tensor product (every pair of degrees, each
    channel with itself, one learned weight per channel and path). Applied to the aggregated
    messages :math:`a_i = \sum_j \alpha_{ij} v_{ij}`, :math:`p^{(2)}` holds products of pairs of
    neighbours' messages and :math:`p^{(3)}` of triples, so one layer sees three- and four-body
    terms (the idea of MACE's symmetric contraction, with ``correlation`` its order 2 or 3).
    Equivariant by construction, zero for an atom with no neighbours.

    With ``num_species > 0`` the final mix :math:`W_3` depends on the element of the atom (a linear
    map per element: the e3nn product with the one-hot species), as MACE's symmetric contraction
    has weights per element; :meth:`forward` then takes the one-hot species ``node_attrs``.

    Shapes: ``[N, irreps_in.dim]`` (and ``node_attrs [N, num_species]``) -> ``[N, irreps_out.dim]``.
    """

    def __init__(self, irreps_in, irreps_out, *, correlation: int = 2, num_species: int = 0) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        if correlation not in (2, 3):
            raise ValueError(f"correlation must be 2 or 3, got {correlation!r}")
        if not isinstance(num_species, int) or num_species < 0:
            raise ValueError(f"num_species must be a non-negative integer, got {num_species!r}")
        if len({mul for mul, _ in self.irreps_in}) != 1:
            raise ValueError(f"NodeTensorSquare needs one multiplicity for every degree, got {self.irreps_in}")
        self.correlation = correlation
        self.pre = DenseLinear(self.irreps_in, self.irreps_in)
        self.square = _channelwise_product(self.irreps_in, self.irreps_in, {ir for _, ir in self.irreps_out}, True)
        products = self.square.irreps_out
        if correlation == 3:
            # The cube is built on the square mixed back to the input's layout (one copy of each degree).
            self.mix = DenseLinear(self.square.irreps_out, self.irreps_in)
            self.cube = _channelwise_product(self.irreps_in, self.irreps_in, {ir for _, ir in self.irreps_out}, False)
            products = self.square.irreps_out + self.cube.irreps_out
        self.per_species = num_species > 0
        if self.per_species:
            self.post = species_linear(products, self.irreps_out, num_species)
        else:
            self.post = DenseLinear(products, self.irreps_out)

    def forward(self, x: torch.Tensor, node_attrs: Optional[torch.Tensor] = None) -> torch.Tensor:
        y = self.pre(x)  # [N, irreps_in.dim]
        p = self.square(y, y)  # [N, square.irreps_out.dim]
        if self.correlation == 3:
            p = torch.cat([p, self.cube(self.mix(p), y)], dim=-1)  # [N, square + cube dims]
        if self.per_species:
            if node_attrs is None:
                raise ValueError("NodeTensorSquare built with num_species > 0 needs node_attrs (the one-hot species)")
            return self.post(p, node_attrs)  # [N, irreps_out.dim]
        return self.post(p)  # [N, irreps_out.dim]
