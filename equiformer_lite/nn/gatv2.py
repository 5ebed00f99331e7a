"""Sparse GATv2 attention layer of the JAT potential (JAT thesis, chapter 3), smooth at the cutoff."""

from __future__ import annotations

from typing import Optional

import torch
from e3nn import o3
from torch import nn
from torch_geometric.nn import MessagePassing
from torch_geometric.utils import softmax

__all__ = ["GATv2Layer", "ATTENTION_ACTIVATIONS"]

ATTENTION_ACTIVATIONS = ("silu", "leaky_relu")
UPDATES = ("skip", "gru")


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
    ``edge_index [2, E]`` -> ``[N, channels]`` (and ``[E, num_heads]`` weights on request).
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
    ):
        m, alpha = self.attend(h, edge_features, envelope, edge_index)
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
        return f"channels={self.channels}, heads={self.num_heads}, update={update}, attention={self.attention_activation}"
