"""One form for the attention weights of every model, for plots and analysis."""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = ["AttentionWeights"]


class AttentionWeights(NamedTuple):
    """The attention of every layer (block) of a model on a graph or batch.

    ``edge_index [2, E]`` lists the attended pairs as (sender j, receiver i), as a graph's
    ``edge_index`` does: the neighbour list's edges for the local models (periodic images of a
    pair are separate edges), every ordered pair i != j of a structure for the A2I Transformer.
    ``weights[layer]`` is ``[E, num_heads]``: the weight of j in the attention of i. ``batch [N]``
    is the structure index of every atom.
    """

    edge_index: torch.Tensor
    weights: list[torch.Tensor]
    batch: torch.Tensor

    def dense(self, layer: int, structure: int = 0) -> torch.Tensor:
        """``[num_heads, n, n]`` weights over the ``n`` atoms of one structure, in its atom order
        (rows: attending atom i, columns: attended atom j; the images of a pair summed)."""
        atoms = torch.nonzero(self.batch == structure).squeeze(1)  # [n]
        if atoms.numel() == 0:
            raise ValueError(f"structure {structure} is not in the batch of {int(self.batch.max()) + 1}")
        first, n = int(atoms[0]), atoms.numel()
        in_structure = self.batch[self.edge_index[1]] == structure  # [E]
        sender, receiver = self.edge_index[:, in_structure] - first  # [E_s] each
        weights = self.weights[layer][in_structure]  # [E_s, H]
        out = weights.new_zeros(n, n, weights.shape[1])  # [n, n, H]
        out.index_put_((receiver, sender), weights, accumulate=True)
        return out.permute(2, 0, 1)  # [H, n, n]
