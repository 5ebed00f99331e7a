"""A channel-wise tensor square of node features: raises the body order of aggregated messages."""

from __future__ import annotations

import torch
from e3nn import o3
from torch import nn

__all__ = ["NodeTensorSquare"]


class NodeTensorSquare(nn.Module):
    r"""Channel-wise Clebsch-Gordan square of a node's features, mixed by a linear layer:

    .. math:: p_i = W_2 \Big(\bigoplus_{l_1, l_2 \to l} w_{l_1 l_2 l} \odot \big(W_1 a_i\big)^{l_1} \otimes \big(W_1 a_i\big)^{l_2}\Big)^{l}

    Applied to the aggregated messages :math:`a_i = \sum_j \alpha_{ij} v_{ij}`, the square holds
    products of pairs of neighbours' messages, so a layer sees three-body terms (the idea of
    MACE's symmetric contraction at correlation order two, built from e3nn's ``"uuu"``
    tensor-product paths: every pair of input degrees, each channel with itself, one learned weight
    per channel and path). Equivariant by construction, zero for an atom with no neighbours.

    Shapes: ``[N, irreps_in.dim]`` -> ``[N, irreps_out.dim]``.
    """

    def __init__(self, irreps_in, irreps_out) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        muls = {mul for mul, _ in self.irreps_in}
        if len(muls) != 1:
            raise ValueError(f"NodeTensorSquare needs one multiplicity for every degree, got {self.irreps_in}")
        allowed = {ir for _, ir in self.irreps_out}
        mid, instructions = [], []
        for i, (mul, ir1) in enumerate(self.irreps_in):
            for j, (_, ir2) in enumerate(self.irreps_in):
                if j < i:  # (l1, l2) and (l2, l1) give the same products of one input
                    continue
                for ir in ir1 * ir2:
                    if ir in allowed:
                        instructions.append((i, j, len(mid), "uuu", True))
                        mid.append((mul, ir))
        if not mid:
            raise ValueError(f"no tensor-square path from {self.irreps_in} reaches {self.irreps_out}")
        self.pre = o3.Linear(self.irreps_in, self.irreps_in)
        self.tp = o3.TensorProduct(self.irreps_in, self.irreps_in, o3.Irreps(mid), instructions)
        self.post = o3.Linear(self.tp.irreps_out, self.irreps_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.pre(x)  # [N, irreps_in.dim]
        return self.post(self.tp(y, y))  # [N, irreps_out.dim]
