"""Envelope-weighted softmax over the neighbours of each atom."""

from __future__ import annotations

import torch
from torch_geometric.utils import scatter

__all__ = ["envelope_softmax"]


def envelope_softmax(
    logits: torch.Tensor, envelope: torch.Tensor, receiver: torch.Tensor, num_nodes: int
) -> torch.Tensor:
    r"""Attention weights that stay smooth when a neighbour crosses the cutoff.

    .. math::
        \alpha_{ij} = \frac{u(r_{ij})\, e^{s_{ij}}}{\sum_{k \in \mathcal N(i)} u(r_{ik})\, e^{s_{ik}}}

    Why the envelope :math:`u` sits inside the normalisation: with a plain softmax, the moment a new
    neighbour k enters the cutoff the denominator of *every* other neighbour of i jumps by
    :math:`e^{s_{ik}} > 0`, so the energy jumps even if k's own message is tiny. With
    :math:`u(r_{ik}) \to 0` (with its derivatives) at the cutoff, the newcomer enters the sum
    continuously. A lone neighbour gets :math:`\alpha = 1` whatever :math:`u` is, so the caller
    must also multiply the messages by :math:`u`.

    The per-receiver maximum logit is subtracted before ``exp`` for stability. It cancels exactly
    in the ratio, so it is detached (the max is not differentiable where two logits tie). An atom
    with no neighbours, or whose neighbours all sit at the cutoff, gets no weights (zeros), not NaN.

    Parameters
    ----------
    logits : ``[E, H]`` per-edge, per-head logits :math:`s_{ij}`.
    envelope : ``[E]`` envelope values :math:`u(r_{ij}) \in [0, 1]`.
    receiver : ``[E]`` index i of the receiving atom of each edge.
    num_nodes : N.

    Returns
    -------
    ``[E, H]`` weights; for each receiver and head they sum to 1 (or 0, see above).
    """
    with torch.no_grad():
        max_logit = scatter(logits, receiver, dim=0, dim_size=num_nodes, reduce="max")  # [N, H]
    weights = envelope.unsqueeze(-1) * torch.exp(logits - max_logit[receiver])  # [E, H]
    denom = scatter(weights, receiver, dim=0, dim_size=num_nodes, reduce="sum")  # [N, H]
    tiny = torch.finfo(weights.dtype).tiny
    return weights / denom.clamp_min(tiny)[receiver]  # [E, H]
