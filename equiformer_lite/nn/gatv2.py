"""Sparse GATv2 attention layer of the JAT potential (JAT thesis, chapter 3), smooth at the cutoff."""

from __future__ import annotations

from typing import Optional

import torch
from e3nn import o3
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import scatter, softmax

__all__ = ["GATv2Layer", "DensityInvariants", "ATTENTION_ACTIVATIONS"]

ATTENTION_ACTIVATIONS = ("silu", "leaky_relu")
UPDATES = ("skip", "gru")


class DensityInvariants(nn.Module):
    r"""Angular (three-body) invariants of a learned neighbour density, for invariant layers.

    Each receiver i expands its neighbours' features, weighted per channel c by a radial
    function, in spherical harmonics, and keeps the rotation-invariant power of every degree:

    .. math::
        A_{i,c,lm} = \frac{1}{\bar n} \sum_{j \in \mathcal N(i)} u(r_{ij})\, R_c(d_{ij})\,
                     (W h_j)_c\, Y_{lm}(\hat r_{ij}), \qquad
        q_{i,c,l} = \frac{1}{2l+1} \sum_{m=-l}^{l} A_{i,c,lm}^2

    (:math:`d_{ij}` the edge features, :math:`R = W_R d` a linear map without bias, :math:`u` the
    cutoff envelope, :math:`\bar n` the average neighbour count; :math:`W` maps the ``channels``
    features to ``density_channels`` K, which sets the cost: the per-edge terms are
    ``[E, K, (lmax+1)^2]``). :math:`q` is ACE's and MACE's
    correlation-2 invariant restricted to one channel: :math:`\sum_m A_{lm}A_{lm}` sums over pairs
    of neighbours :math:`j, k` the Legendre polynomial :math:`P_l(\cos\theta_{jik})` of the angle
    they make at i, so it carries the bond angles that sums over distances alone cannot. It is
    invariant under rotations and reflections (:math:`Y_l(-\hat r) = (-1)^l Y_l(\hat r)`, squared),
    translations and permutations of the neighbours; it vanishes smoothly as a neighbour reaches
    the cutoff (:math:`u`), and an atom without neighbours gets :math:`q = 0`.

    With ``correlation=3`` the invariants also include, per channel, the bispectrum: every
    rotation-invariant product of three density components,

    .. math::
        b_{i,c,(l_1 l_2 l_3)} = \sum_{m_1 m_2 m_3} C^{l_1 l_2 l_3}_{m_1 m_2 m_3}\,
            A_{i,c,l_1 m_1} A_{i,c,l_2 m_2} A_{i,c,l_3 m_3}
            \qquad (l_1 \le l_2 \le l_3 \le L,\ |l_1 - l_2| \le l_3,\ l_1 + l_2 + l_3 \text{ even}),

    with :math:`C` the real Wigner 3j symbols of e3nn (``o3.wigner_3j``). These are ACE's and MACE's
    correlation-3 (four-body) invariants: sums over triples of neighbours of functions of the
    three bond vectors, which the power spectrum (pairs of neighbours) cannot resolve. The
    parity rule keeps only triples that are even under inversion (:math:`Y_l(-\hat r) =
    (-1)^l Y_l(\hat r)`), so the energy stays invariant under reflections; an odd triple would give
    a pseudoscalar. They are computed per atom, not per edge: for :math:`L = 3` eight triples,
    about 600 multiply-adds per atom and channel (the four with :math:`l_1 = 0` in closed form,
    :math:`\sqrt{2l+1}\, A_{00}\, q_l`). The many small products and their second derivatives
    still cost time in force training: a step on five aspirins (one thread) took 1.4x as long as
    with the power spectrum alone, at K = 16 and at K = 48. The 3j constants
    are buffers computed in torch's default dtype, as e3nn's: build the module in the dtype it
    runs in (the models do), since float32 constants cast to float64 keep their round-off.

    Shapes: ``h [N, channels]``, ``edge_features [E, edge_dim]``, ``envelope [E]``,
    ``sh [E, (lmax+1)^2]`` (component-normalised harmonics of the edge directions, degrees
    0..lmax), ``edge_index [2, E]`` -> ``[N, K * num_invariants]``, with ``num_invariants``
    ``lmax + 1`` (correlation 2) plus the number of triples (correlation 3).
    """

    def __init__(self, channels: int, edge_dim: int, lmax: int, *, density_channels: Optional[int] = None,
                 avg_num_neighbors: float = 1.0, correlation: int = 2) -> None:
        super().__init__()
        density_channels = channels if density_channels is None else density_channels
        for name, value in (("channels", channels), ("edge_dim", edge_dim), ("lmax", lmax),
                            ("density_channels", density_channels)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not avg_num_neighbors > 0:
            raise ValueError(f"avg_num_neighbors must be positive, got {avg_num_neighbors!r}")
        if correlation not in (2, 3):
            raise ValueError(f"correlation must be 2 (power spectrum) or 3 (and bispectrum), got {correlation!r}")
        self.correlation = correlation
        self.triples = even_triples(lmax) if correlation == 3 else []
        self.irreps_in = o3.Irreps(f"{channels}x0e")
        self.irreps_out = o3.Irreps(f"{density_channels * (lmax + 1 + len(self.triples))}x0e")
        self.density_channels, self.lmax, self.avg_num_neighbors = density_channels, lmax, float(avg_num_neighbors)
        self.lin_features = nn.Linear(channels, density_channels, bias=False)  # W
        self.lin_radial = nn.Linear(edge_dim, density_channels, bias=False)  # W_R
        # Constants, not saved, exact in any dtype (integers): [(L+1)^2, L+1] one where component k
        # has degree l, and [L+1] the 2l+1 components of each degree.
        degrees = torch.cat([torch.full((2 * l + 1,), l) for l in range(lmax + 1)])
        self.register_buffer("_degree_sums", (degrees[:, None] == torch.arange(lmax + 1)).to(torch.get_default_dtype()),
                             persistent=False)
        self.register_buffer("_degree_dims", 2.0 * torch.arange(lmax + 1).to(torch.get_default_dtype()) + 1, persistent=False)
        # The bispectrum's 3j symbols for the triples with l1 > 0 (l1 = 0 has a closed form),
        # [2l1+1, 2l2+1, 2l3+1] each in torch's default dtype (as e3nn's), not saved.
        for t, (l1, l2, l3) in enumerate(self.triples):
            if l1 > 0:
                self.register_buffer(f"_w3j_{t}", o3.wigner_3j(l1, l2, l3), persistent=False)

    def forward(self, h: torch.Tensor, edge_features: torch.Tensor, envelope: torch.Tensor, sh: torch.Tensor,
                edge_index: torch.Tensor) -> torch.Tensor:
        sender, receiver = edge_index[0], edge_index[1]
        weights = self.lin_radial(edge_features) * (envelope / self.avg_num_neighbors).unsqueeze(-1)  # [E, K]
        # Components before channels ([., (L+1)^2, K]): every elementwise product below then runs
        # over K contiguous channels instead of 2l+1 components (a force-training step with the
        # bispectrum at K = 48 went from 162 to 113 ms on one thread).
        edge_density = sh.unsqueeze(-1) * (self.lin_features(h)[sender] * weights).unsqueeze(1)  # [E, (L+1)^2, K]
        density = scatter(edge_density, receiver, dim=0, dim_size=h.shape[0], reduce="sum")  # [N, (L+1)^2, K]
        power = (self._degree_sums.T @ density.square()) / self._degree_dims.unsqueeze(-1)  # [N, L+1, K] mean over m
        parts = [power]
        if self.triples:
            # l1 = 0: C^{0ll}_{0mm'} = delta_mm' / sqrt(2l+1), so b_{(0,l,l)} = A_00 sqrt(2l+1) q_l.
            parts.append(density[:, :1] * power * self._degree_dims.sqrt().unsqueeze(-1))  # [N, L+1, K]
        for t, (l1, l2, l3) in enumerate(self.triples):
            if l1 == 0:
                continue
            a1, a2, a3 = (density[:, l * l:(l + 1) * (l + 1)] for l in (l1, l2, l3))  # [N, 2l+1, K]
            # (one triple at a time: a single dense product over all triples moves ~3x more memory;
            # einsum would pick its contraction order from the sizes, which fixes N under torch.compile)
            outer = (a1.unsqueeze(2) * a2.unsqueeze(1)).flatten(1, 2)  # [N, (2l1+1)(2l2+1), K]
            pair = getattr(self, f"_w3j_{t}").flatten(0, 1).T @ outer  # [N, 2l3+1, K]
            parts.append((pair * a3).sum(1, keepdim=True))  # [N, 1, K]
        # channel-major output, k * (L+1+T) + invariant, as saved models expect
        return torch.cat(parts, dim=1).transpose(1, 2).reshape(h.shape[0], -1)  # [N, K * (L+1+T)]

    def extra_repr(self) -> str:
        return (f"density_channels={self.density_channels}, lmax={self.lmax}, correlation={self.correlation}, "
                f"avg_num_neighbors={self.avg_num_neighbors:g}")


def even_triples(lmax: int) -> list[tuple[int, int, int]]:
    """Degrees ``(l1, l2, l3)``, ``l1 <= l2 <= l3 <= lmax``, that couple to a true scalar: the
    triangle rule ``l3 <= l1 + l2`` and an even sum (parity +1 under inversion)."""
    return [(l1, l2, l3) for l1 in range(lmax + 1) for l2 in range(l1, lmax + 1) for l3 in range(l2, lmax + 1)
            if l3 <= l1 + l2 and (l1 + l2 + l3) % 2 == 0]


class GATv2Layer(MessagePassing):
    r"""One JAT message-passing round with dynamic (GATv2) attention over a sparse edge list.

    For every edge :math:`j \to i` (sender j, receiver i) and head h, with edge features
    :math:`d_{ij}` (the distance or its radial basis):

    .. math::
        e^h_{ij} = a_h^\top \sigma_a\big(W^h_r h_i + W^h_s h_j + W^h_d d_{ij}\big)
        \qquad \text{(thesis eqs. 2.12, 3.1)}

        \alpha^h_{ij} = \frac{u(r_{ij})\, e^{e^h_{ij}}}{\sum_{k \in \mathcal N(i)} u(r_{ik})\, e^{e^h_{ik}}}
        = \mathrm{softmax}_j\big(e^h_{ij} + \log u(r_{ij})\big)

        m_i = \big\Vert_h \sum_{j} \alpha^h_{ij}\, u(r_{ij})\, W^h_s h_j

        h_i' = \mathrm{LN}\big(h_i + \mathrm{Swish}(m_i)\big) \quad \text{(skip, eq. 3.3)}
        \qquad\text{or}\qquad h_i' = \mathrm{LN}\big(\mathrm{GRU}(m_i, h_i)\big)

    With ``angular_lmax`` :math:`L > 0` (not in the thesis) the messages also carry the angles
    between neighbours: :math:`m_i \mathrel{+}= W_q\, q_i`, with :math:`q_i` the
    :class:`DensityInvariants` of degrees :math:`0 \dots L` over ``angular_channels`` density
    channels (default: ``channels``; the forward then takes the edges' spherical harmonics
    ``sh``), and with ``angular_correlation=3`` their bispectrum too (four-body terms).
    Distances alone make every round a sum over pairs, which resolves bond angles only
    through several rounds; :math:`q_i` gives each round the three-body terms.

    The softmax is ``torch_geometric.utils.softmax`` of the logits plus :math:`\log u`, which
    puts the cutoff envelope :math:`u` *inside* the normalisation: a neighbour entering the cutoff
    joins the denominator continuously instead of changing every other weight at once (see
    :func:`~equiformer_lite.nn.softmax.envelope_softmax`). The messages carry :math:`u` as well, because a lone
    neighbour has :math:`\alpha = 1` whatever :math:`u` is. An atom without neighbours receives
    :math:`m_i = 0`, no NaN. With :math:`u \equiv 1`, LeakyReLU as :math:`\sigma_a` and the
    update left out, the attention and messages are those of ``torch_geometric.nn.GATv2Conv``
    (``concat=True``, no self-loops); a test checks this with copied weights.

    The ``channels`` are split evenly among the heads (thesis 3.1.3), so the width of every layer
    stays ``channels`` and the skip connection needs no projection.

    Shapes: ``h [N, channels]``, ``edge_features [E, edge_dim]``, ``envelope [E]``,
    ``edge_index [2, E]`` (and ``sh [E, (angular_lmax+1)^2]`` with ``angular_lmax``) ->
    ``[N, channels]`` (and ``[E, num_heads]`` weights on request).
    """

    def __init__(
        self,
        channels: int,
        edge_dim: int,
        *,
        num_heads: int = 1,
        update: str = "skip",
        layer_norm: bool = True,
        attention_activation: str = "silu",
        negative_slope: float = 0.2,
        bias: bool = True,
        angular_lmax: int = 0,
        angular_channels: Optional[int] = None,
        angular_correlation: int = 2,
        avg_num_neighbors: float = 1.0,
    ) -> None:
        super().__init__(aggr="sum", node_dim=0)
        for name, value in (("channels", channels), ("edge_dim", edge_dim), ("num_heads", num_heads)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by the number of heads ({num_heads})")
        if update not in UPDATES:
            raise ValueError(f"unknown update '{update}', choose one of {list(UPDATES)}")
        if attention_activation not in ATTENTION_ACTIVATIONS:
            raise ValueError(
                f"unknown attention_activation '{attention_activation}', choose one of {list(ATTENTION_ACTIVATIONS)}"
            )
        # Invariant node features in and out (the edge features are invariant too: lengths only).
        self.irreps_in = self.irreps_out = o3.Irreps(f"{channels}x0e")
        self.channels, self.num_heads, self.head_dim = channels, num_heads, channels // num_heads
        self.attention_activation, self.negative_slope = attention_activation, float(negative_slope)
        self.lin_sender = nn.Linear(channels, channels, bias=bias)  # W_s
        self.lin_receiver = nn.Linear(channels, channels, bias=bias)  # W_r
        self.lin_edge = nn.Linear(edge_dim, channels, bias=False)  # W_d
        self.att = nn.Parameter(torch.empty(1, num_heads, self.head_dim))  # a
        self.gru = nn.GRUCell(channels, channels, bias=bias) if update == "gru" else None
        self.norm = nn.LayerNorm(channels) if layer_norm else nn.Identity()
        if not isinstance(angular_lmax, int) or angular_lmax < 0:
            raise ValueError(f"angular_lmax must be a non-negative integer, got {angular_lmax!r}")
        self.angular_lmax = angular_lmax
        if angular_lmax:
            self.density = DensityInvariants(channels, edge_dim, angular_lmax, density_channels=angular_channels,
                                             avg_num_neighbors=avg_num_neighbors, correlation=angular_correlation)
            self.lin_density = nn.Linear(self.density.irreps_out.dim, channels, bias=False)  # W_q
        self.reset_parameters()

    def reset_parameters(self) -> None:
        super().reset_parameters()
        for lin in (self.lin_sender, self.lin_receiver, self.lin_edge):
            nn.init.xavier_uniform_(lin.weight)
            if lin.bias is not None:
                nn.init.zeros_(lin.bias)
        nn.init.xavier_uniform_(self.att)
        if self.gru is not None:
            self.gru.reset_parameters()
        if self.angular_lmax:
            for lin in (self.density.lin_features, self.density.lin_radial, self.lin_density):
                nn.init.xavier_uniform_(lin.weight)

    def _sigma_a(self, x: torch.Tensor) -> torch.Tensor:
        if self.attention_activation == "leaky_relu":
            return nn.functional.leaky_relu(x, self.negative_slope)
        return nn.functional.silu(x)

    def attend(
        self, h: torch.Tensor, edge_features: torch.Tensor, envelope: torch.Tensor, edge_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The aggregated messages ``m [N, channels]`` and attention weights ``alpha [E, num_heads]``."""
        shape = (-1, self.num_heads, self.head_dim)
        x_s = self.lin_sender(h).view(shape)  # [N, H, C]
        x_r = self.lin_receiver(h).view(shape)  # [N, H, C]
        alpha = self.edge_updater(edge_index, x=(x_s, x_r), edge_features=edge_features, envelope=envelope)  # [E, H]
        m = self.propagate(edge_index, x=(x_s, x_r), alpha=alpha, envelope=envelope)  # [N, H, C]
        return m.reshape(-1, self.channels), alpha

    def forward(
        self,
        h: torch.Tensor,
        edge_features: torch.Tensor,
        envelope: torch.Tensor,
        edge_index: torch.Tensor,
        return_attention: bool = False,
        sh: Optional[torch.Tensor] = None,
    ):
        m, alpha = self.attend(h, edge_features, envelope, edge_index)
        if self.angular_lmax:  # sh [E, (angular_lmax+1)^2] is then required
            m = m + self.lin_density(self.density(h, edge_features, envelope, sh, edge_index))
        m = nn.functional.silu(m)  # Swish-1 (eq. 3.2)
        out = self.norm(h + m if self.gru is None else self.gru(m, h))  # [N, channels]
        return (out, alpha) if return_attention else out

    def edge_update(
        self,
        x_j: torch.Tensor,
        x_i: torch.Tensor,
        edge_features: torch.Tensor,
        envelope: torch.Tensor,
        index: torch.Tensor,
        ptr: Optional[torch.Tensor],
        dim_size: Optional[int],
    ) -> torch.Tensor:
        z = x_i + x_j + self.lin_edge(edge_features).view(-1, self.num_heads, self.head_dim)  # [E, H, C]
        logits = (self._sigma_a(z) * self.att).sum(dim=-1)  # [E, H]
        # log u, with u clamped at the smallest normal number: u is 0 only at the cutoff itself (and
        # float32 round-off can make it a hair negative there); exp(log tiny) is 0 for all purposes.
        log_u = torch.log(envelope.clamp_min(torch.finfo(envelope.dtype).tiny)).unsqueeze(-1)  # [E, 1]
        return softmax(logits + log_u, index, ptr, dim_size)  # [E, H]

    def message(self, x_j: torch.Tensor, alpha: torch.Tensor, envelope: torch.Tensor) -> torch.Tensor:
        return x_j * (alpha * envelope.unsqueeze(-1)).unsqueeze(-1)  # [E, H, C]

    def extra_repr(self) -> str:
        update = "skip" if self.gru is None else "gru"
        angular = f", angular_lmax={self.angular_lmax}" if self.angular_lmax else ""
        return f"channels={self.channels}, heads={self.num_heads}, update={update}, attention={self.attention_activation}{angular}"
