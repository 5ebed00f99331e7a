"""Self-interaction: a node mixing the channels of its own features (thesis eqs. 2.6-2.8)."""

from __future__ import annotations

import torch
from e3nn import o3
from e3nn.nn import FullyConnectedNet
from torch import nn

from .dense import DenseLinear, DenseSpeciesLinear
from .irreps_tools import irreps_layout

__all__ = ["AttentiveSelfInteraction", "build_self_interaction", "species_linear"]


class AttentiveSelfInteraction(nn.Module):
    r"""Attentive self-interaction (thesis eqs. 2.6-2.7).

    For each degree :math:`l` present in both ``irreps_in`` and ``irreps_out``, the channel-mixing
    matrix is predicted per atom from the invariant Gram matrix of that degree's channels,

    .. math::
        w^{ll}_{i,c'c} = \mathrm{MLP}_l\Big(\big[f^{l\top}_{i,c'} f^{l}_{i,c}\big]_{c' \le c}\Big), \qquad
        f^{l}_{out,i,c'} = \sum_c w^{ll}_{i,c'c}\, f^{l}_{i,c}.

    The Gram entries are invariant under O(3) (dot products of two copies of one irrep), so the
    weights are invariant and the output equivariant. Degrees of ``irreps_out`` that the input
    lacks get zeros. Each irrep may appear at most once in ``irreps_in``/``irreps_out``.

    Shapes: ``[N, irreps_in.dim]`` -> ``[N, irreps_out.dim]``.
    """

    def __init__(self, irreps_in, irreps_out, *, hidden: int = 32) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps_in)
        self.irreps_out = o3.Irreps(irreps_out)
        for name, irreps in (("irreps_in", self.irreps_in), ("irreps_out", self.irreps_out)):
            if len({ir for _, ir in irreps}) != len(irreps):
                raise ValueError(f"{name} must list each irrep once (simplified), got {irreps}")
        in_slices = {ir: (sl, mul) for sl, (mul, ir) in zip(self.irreps_in.slices(), self.irreps_in)}
        self.paths: list[tuple[slice, int, int, int]] = []  # (input slice, mul_in, mul_out, dim)
        self.out_blocks: list[int | None] = []  # path index per output irrep; None: zeros
        mlps = []
        for mul_out, ir in self.irreps_out:
            if ir not in in_slices:
                self.out_blocks.append(None)
                continue
            sl, mul_in = in_slices[ir]
            num_pairs = mul_in * (mul_in + 1) // 2
            mlps.append(FullyConnectedNet([num_pairs, hidden, mul_out * mul_in], nn.functional.silu))
            # Upper-triangle pairs of the symmetric Gram matrix, computed once (not per forward).
            self.register_buffer(f"_pairs_{len(self.paths)}", torch.triu_indices(mul_in, mul_in), persistent=False)
            self.out_blocks.append(len(self.paths))
            self.paths.append((sl, mul_in, mul_out, ir.dim))
        self.mlps = nn.ModuleList(mlps)
        self._out_layout = irreps_layout(self.irreps_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        blocks = []
        for (mul_out, dim_out), path in zip(self._out_layout, self.out_blocks):
            if path is None:  # a degree the input lacks contributes zeros
                blocks.append(x.new_zeros(x.shape[0], mul_out * dim_out))
                continue
            sl, mul_in, _, dim = self.paths[path]
            mlp = self.mlps[path]
            f = x[:, sl].reshape(-1, mul_in, dim)  # [N, c, 2l+1]
            gram = torch.einsum("ncm,ndm->ncd", f, f) / dim  # [N, c, c], invariant
            iu = getattr(self, f"_pairs_{path}")  # [2, c(c+1)/2]
            w = mlp(gram[:, iu[0], iu[1]]).reshape(-1, mul_out, mul_in)  # [N, c', c]
            blocks.append(torch.einsum("noc,ncm->nom", w, f).reshape(-1, mul_out * dim))
        return torch.cat(blocks, dim=-1)  # [N, irreps_out.dim]


def species_linear(irreps_in, irreps_out, num_species: int) -> DenseSpeciesLinear:
    """A linear map per element: the e3nn product of the features with the one-hot species
    (``num_species`` scalars), called as ``module(x, one_hot)``."""
    return DenseSpeciesLinear(irreps_in, irreps_out, num_species)


def build_self_interaction(kind: str, irreps_in, irreps_out, *, hidden: int = 32, num_species: int = 0) -> nn.Module:
    """``"linear"``: :class:`e3nn.o3.Linear` (eq. 2.8's :math:`W_V^{ll}`); ``"species"``: a linear map
    per element, the e3nn tensor product of the features with the one-hot species (NequIP's
    self-connection; called as ``module(x, one_hot)``); ``"attentive"``: eqs. 2.6-2.7."""
    if kind == "linear":
        return DenseLinear(irreps_in, irreps_out)
    if kind == "species":
        return species_linear(irreps_in, irreps_out, num_species)
    if kind == "attentive":
        return AttentiveSelfInteraction(irreps_in, irreps_out, hidden=hidden)
    raise ValueError(f"unknown self_interaction '{kind}', choose 'linear', 'species' or 'attentive'")
