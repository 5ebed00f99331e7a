"""Equivariant nonlinearities: the norm nonlinearity (thesis eq. 2.9) and the gate."""

from __future__ import annotations

import torch
from e3nn import o3
from e3nn.nn import Gate
from torch import nn

from .activations import get_activation
from .irreps_tools import irreps_layout, split_irreps

__all__ = ["NormNonlinearity", "build_gate"]

class _DegreeLayerNormAct(nn.Module):
    """LayerNorm over the channels of each irrep block of a ``[N, num_irreps]`` norm tensor,
    then an activation: the ``ReLU(LN(.))`` of eq. 2.9, applied block by block."""

    def __init__(self, irreps: o3.Irreps, activation: str) -> None:
        super().__init__()
        self.muls = [mul for mul, _ in irreps]
        self.norms = nn.ModuleList(nn.LayerNorm(mul) for mul in self.muls)
        self.act = get_activation(activation)

    def forward(self, norms: torch.Tensor) -> torch.Tensor:
        blocks = torch.split(norms, self.muls, dim=-1)  # each [N, mul]
        return self.act(torch.cat([ln(b) for ln, b in zip(self.norms, blocks)], dim=-1))


class _BiasAct(nn.Module):
    """``act(norm + b)`` with a learned bias per channel, when no layer norm is used."""

    def __init__(self, num_irreps: int, activation: str) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(num_irreps))
        self.act = get_activation(activation)

    def forward(self, norms: torch.Tensor) -> torch.Tensor:
        return self.act(norms + self.bias)


class NormNonlinearity(nn.Module):
    r"""Norm nonlinearity after the SE(3)-Transformer thesis (eq. 2.9), in a smooth form:

    .. math::
        f^{l}_{out,c} = \sigma\big(\mathrm{LN}(\lVert f^{l}\rVert_\epsilon)\big)_c\; f^{l}_c, \qquad
        \lVert f\rVert_\epsilon = \sqrt{\lVert f\rVert^2 + \epsilon^2}

    The norms of the irreps are invariant, so scaling each irrep by any function of them is
    equivariant; the layer norm runs over the channels of each degree.

    Why not eq. 2.9 verbatim: the thesis multiplies the *unit vector* :math:`f/\lVert f\rVert` by
    :math:`\sigma(\mathrm{LN}(\lVert f\rVert))`, which need not vanish at :math:`f = 0`, so the output
    flips direction where a feature vector passes through zero. The energy is then not smooth:
    in NVE molecular dynamics of ethanol it changed by 0.17 eV within one 0.1 fs step and the
    total energy wandered by 1 eV (measured; with this form or the gate, 1e-4 eV). Scaling
    :math:`f` itself by a function of the smoothed norm keeps the layer :math:`C^\infty`.

    Parameters
    ----------
    irreps : the features.
    activation : ``"silu"`` (default) or ``"relu"`` (the thesis' choice; not smooth), ``"tanh"``, ...
    layer_norm : layer-normalise the norms of each degree over channels (eq. 2.9); otherwise a
        learned bias per channel is added before the activation.
    epsilon : the smoothing of the norm.

    Shapes: ``[N, irreps.dim]`` -> ``[N, irreps.dim]``.
    """

    def __init__(self, irreps, *, activation: str = "silu", layer_norm: bool = True, epsilon: float = 1e-2) -> None:
        super().__init__()
        self.irreps_in = o3.Irreps(irreps)
        self.irreps_out = self.irreps_in
        if not epsilon > 0:
            raise ValueError(f"epsilon must be positive, got {epsilon}")
        self.epsilon = float(epsilon)
        if layer_norm:
            for mul, ir in self.irreps_in:
                if mul < 2:
                    raise ValueError(f"layer_norm over channels needs at least 2 channels of {ir}, got {mul}")
            self.scalar_fn = _DegreeLayerNormAct(self.irreps_in, activation)
        else:
            self.scalar_fn = _BiasAct(self.irreps_in.num_irreps, activation)
        self.squared_norm = o3.Norm(self.irreps_in, squared=True)
        self._layout = irreps_layout(self.irreps_in)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        norms = torch.sqrt(self.squared_norm(x) + self.epsilon**2)  # [N, num_irreps], smooth
        scales = self.scalar_fn(norms)  # [N, num_irreps]
        blocks, start = [], 0
        for xs, (mul, dim) in zip(split_irreps(x, self._layout), self._layout):
            block = xs.reshape(-1, mul, dim) * scales[:, start : start + mul, None]
            blocks.append(block.reshape(-1, mul * dim))
            start += mul
        return torch.cat(blocks, dim=-1)  # [N, irreps.dim]


class _FewOpGate(Gate):
    """e3nn's :class:`~e3nn.nn.Gate` (the same modules, activations and normalisations), with a
    forward of a few whole-tensor operations: e3nn extracts and multiplies block by block (about
    60 operations per call on the default hidden irreps, most of a small molecule's cost in this
    layer), here one split, the two activations, one gather of each gated component's gate and
    one product. Where each component goes is read off e3nn's own modules at construction."""

    def __init__(self, irreps_scalars, act_scalars, irreps_gates, act_gates, irreps_gated) -> None:
        super().__init__(irreps_scalars, act_scalars, irreps_gates, act_gates, irreps_gated)
        dim = self.irreps_in.dim
        with torch.no_grad():
            probe = torch.arange(dim, dtype=torch.float64)[None]
            positions = [t[0].round().long() for t in self.sc(probe)]  # input position of every scalar, gate, gated entry
            num_gates, num_gated = self.irreps_gates.dim, self.irreps_gated.dim
            factor = self.mul(torch.ones(1, num_gated, dtype=torch.float64), torch.ones(1, num_gates, dtype=torch.float64))[0]
            gate_of = self.mul(torch.ones(1, num_gated, dtype=torch.float64),
                               torch.arange(1, num_gates + 1, dtype=torch.float64)[None])[0] / factor - 1
        order = torch.cat(positions)
        self._contiguous = bool((order == torch.arange(dim)).all())
        self._sizes = [int(p.numel()) for p in positions]
        self.register_buffer("_order", order, persistent=False)
        self.register_buffer("_gate_of", gate_of.round().long(), persistent=False)  # [gated dim] gate index
        self.register_buffer("_factor", factor.to(torch.get_default_dtype()), persistent=False)  # e3nn's product normalisation

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if not self._contiguous:
            features = features.index_select(-1, self._order)
        scalars, gates, gated = torch.split(features, self._sizes, dim=-1)
        scalars = self.act_scalars(scalars)
        if not self._sizes[1]:
            return scalars
        gates = self.act_gates(gates).index_select(-1, self._gate_of) * self._factor  # [..., gated dim]
        return torch.cat([scalars, gated * gates], dim=-1)


def build_gate(irreps_out, *, activation: str = "silu") -> Gate:
    r"""Gate nonlinearity: scalars pass through ``activation`` (``tanh`` for odd scalars, which
    keeps them odd); each irrep with :math:`l > 0` is multiplied by a sigmoid of its own scalar gate.
    """
    irreps_out = o3.Irreps(irreps_out)
    scalars = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l == 0])
    gated = o3.Irreps([(mul, ir) for mul, ir in irreps_out if ir.l > 0])
    act = get_activation(activation)
    return _FewOpGate(
        scalars,
        [act if ir.p == 1 else torch.tanh for _, ir in scalars],
        o3.Irreps(f"{gated.num_irreps}x0e") if gated.num_irreps else o3.Irreps(""),
        [torch.sigmoid] if gated.num_irreps else [],
        gated,
    )
