"""Set Transformer attention blocks (Lee et al. 2019) as the A2I Transformer uses them (eqs. 1-6)."""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.nn.functional import scaled_dot_product_attention
from torch_geometric.utils import to_dense_batch

from .activations import Activation

__all__ = ["MultiheadAttentionBlock", "SetAttentionBlock", "SetTransformerEncoder", "self_attention_mask"]



def self_attention_mask(node_mask: torch.Tensor, *, mask_self: bool = True) -> torch.Tensor:
    r"""Boolean attention mask ``[B, 1, N, N]`` of padded sets (True = query i may attend key j).

    ``node_mask [B, N]`` marks real elements (``to_dense_batch``'s mask). Key j is allowed when it
    is real and, with ``mask_self``, :math:`j \ne i` (an atom does not attend to itself). A
    structure of one atom leaves that atom's row empty; :class:`MultiheadAttentionBlock` gives
    such a row a zero output.
    """
    allowed = node_mask[:, None, None, :]  # [B, 1, 1, N] keys that exist
    n = node_mask.shape[1]
    if mask_self:
        allowed = allowed & ~torch.eye(n, dtype=torch.bool, device=node_mask.device)  # [B, 1, N, N]
    return allowed.expand(node_mask.shape[0], 1, n, n)


class MultiheadAttentionBlock(nn.Module):
    r"""Multi-head Attention Block of the Set Transformer, without pooling (A2I eqs. 1-5):

    .. math::
        \mathrm{Att}(Q, K, V) = \mathrm{softmax}\big(QK^\top/\sqrt{d/h}\big)\, V \qquad (1)

        \mathrm{Multihead}(X, Y, Y) = \mathrm{concat}(O_1, \dots, O_h)\, W^O, \quad
        O_i = \mathrm{Att}(X W^Q_i, Y W^K_i, Y W^V_i) \qquad (2, 3)

        H = X + \mathrm{Multihead}(X, Y, Y), \qquad \mathrm{MAB}(X, Y) = H + \mathrm{rFF}(H) \qquad (5, 4)

    with :math:`d` = ``channels`` split evenly into :math:`h` = ``num_heads`` heads of
    :math:`d/h` (the paper's "most common choice"). The logits are scaled by :math:`1/\sqrt{d/h}`
    (Vaswani et al.; the A2I text writes :math:`\sqrt{d_v}`, which the Set Transformer code takes as
    the full width: a constant factor the weights absorb). The projections have biases, as in the
    Set Transformer code.

    rFF (not specified by either paper beyond "row-wise feed-forward"): here the Transformer's
    two-layer MLP :math:`\mathrm{rFF}(H) = \phi(H W_1 + b_1) W_2 + b_2` with hidden width
    ``ff_hidden`` (default ``channels``) and :math:`\phi` = SiLU by default. SiLU is smooth, so
    forces (autograd derivatives of the energy) are continuous; the Set Transformer reference code
    uses a single ``relu(Linear)``, available as ``activation="relu"`` with the caveat that ReLU's
    kink makes forces discontinuous.

    Layer normalisation is off by default (the A2I paper omits it "for the simplicity of the
    model"); ``layer_norm=True`` applies it where the Set Transformer does (post-norm):
    :math:`H = \mathrm{LN}(X + \mathrm{Multihead})`, :math:`\mathrm{MAB} = \mathrm{LN}(H + \mathrm{rFF}(H))`.

    Masking: ``attn_mask [B, 1, N, M]`` (True = may attend; shared by the heads). A query row with
    no allowed key (a lone atom once its own key is masked) would give a softmax of all
    :math:`-\infty`, i.e. NaN; such a row instead gets :math:`\mathrm{Multihead} = 0` exactly
    (so :math:`H = X`), with finite gradients.

    The attention runs in ``torch.nn.functional.scaled_dot_product_attention`` with the *math*
    backend: forces are autograd derivatives, and training on forces differentiates them again,
    which the fused CPU/GPU attention kernels do not support (their backward has no derivative).

    Shapes: ``x [B, N, channels]``, ``y [B, M, channels]`` -> ``[B, N, channels]``.

    >>> block = MultiheadAttentionBlock(8, num_heads=2)
    >>> block(torch.randn(3, 5, 8), torch.randn(3, 4, 8)).shape
    torch.Size([3, 5, 8])
    """

    def __init__(
        self,
        channels: int,
        num_heads: int = 4,
        *,
        layer_norm: bool = False,
        ff_hidden: Optional[int] = None,
        activation: str = "silu",
    ) -> None:
        super().__init__()
        ff_hidden = channels if ff_hidden is None else ff_hidden
        for name, value in (("channels", channels), ("num_heads", num_heads), ("ff_hidden", ff_hidden)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if channels % num_heads:
            raise ValueError(f"channels ({channels}) must be divisible by the number of heads ({num_heads})")
        self.channels, self.num_heads, self.head_dim = channels, num_heads, channels // num_heads
        self.ff_hidden, self.activation, self.layer_norm = ff_hidden, activation, bool(layer_norm)
        self.lin_query = nn.Linear(channels, channels)  # W^Q (all heads)
        self.lin_key = nn.Linear(channels, channels)  # W^K
        self.lin_value = nn.Linear(channels, channels)  # W^V
        self.lin_out = nn.Linear(channels, channels)  # W^O
        self.feed_forward = nn.Sequential(
            nn.Linear(channels, ff_hidden), Activation(activation), nn.Linear(ff_hidden, channels)
        )  # rFF
        self.norm_attention = nn.LayerNorm(channels) if layer_norm else None
        self.norm_feed_forward = nn.LayerNorm(channels) if layer_norm else None

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.channels}, num_heads={self.num_heads}, ff_hidden={self.ff_hidden}, "
            f"activation={self.activation!r}, layer_norm={self.layer_norm})"
        )

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)  # [B, h, N, d/h]

    def _project(self, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self._heads(self.lin_query(x)), self._heads(self.lin_key(y)), self._heads(self.lin_value(y))

    @staticmethod
    def _safe_mask(attn_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The mask with empty rows opened (to keep the softmax finite) and ``[B, 1, N, 1]`` row flags."""
        has_key = attn_mask.any(dim=-1, keepdim=True)  # [B, 1, N, 1]
        return attn_mask | ~has_key, has_key

    def attention_probabilities(self, x: torch.Tensor, y: torch.Tensor, attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Attention weights ``[B, h, N, M]`` by an explicit softmax (for plots and tests).

        Masked keys get weight 0; each row sums to 1, except a row with no allowed key (all 0).
        """
        q, k, _ = self._project(x, y)
        logits = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # [B, h, N, M]
        if attn_mask is None:
            return logits.softmax(dim=-1)
        safe, has_key = self._safe_mask(attn_mask)
        return logits.masked_fill(~safe, -math.inf).softmax(dim=-1) * has_key

    def forward(self, x: torch.Tensor, y: torch.Tensor, attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        q, k, v = self._project(x, y)
        has_key = None
        if attn_mask is not None:
            attn_mask, has_key = self._safe_mask(attn_mask)
        with sdpa_kernel(SDPBackend.MATH):  # twice differentiable (see the class docstring)
            heads = scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # [B, h, N, d/h]
        multihead = self.lin_out(heads.transpose(1, 2).flatten(-2))  # [B, N, channels]
        if has_key is not None:
            multihead = multihead * has_key[:, 0].to(multihead.dtype)  # exactly 0 for a lone query
        h = x + multihead  # eq. 5
        if self.norm_attention is not None:
            h = self.norm_attention(h)
        out = h + self.feed_forward(h)  # eq. 4
        if self.norm_feed_forward is not None:
            out = self.norm_feed_forward(out)
        return out


class SetAttentionBlock(MultiheadAttentionBlock):
    r"""Set Attention Block :math:`\mathrm{SAB}(X) = \mathrm{MAB}(X, X)` (eq. 6) on padded sets.

    The A2I Transformer masks the diagonal of the attention matrix "to reflect the fact that the
    interaction is between particles": read here as *an atom does not attend to itself* (its key is
    removed from its softmax, ``mask_self=True``), and padding keys are removed as well. The block
    is permutation-equivariant: reordering the elements of a set reorders the output rows.

    Shapes: ``x [B, N, channels]``, ``node_mask [B, N]`` (True for real elements; default all) ->
    ``[B, N, channels]``. Padding rows of the output are meaningless.

    >>> sab = SetAttentionBlock(8, num_heads=2)
    >>> sab(torch.randn(2, 4, 8), torch.tensor([[True] * 4, [True, True, False, False]])).shape
    torch.Size([2, 4, 8])
    """

    def __init__(self, channels: int, num_heads: int = 4, *, mask_self: bool = True, **kwargs) -> None:
        super().__init__(channels, num_heads, **kwargs)
        self.mask_self = bool(mask_self)

    def _mask(self, x: torch.Tensor, node_mask: Optional[torch.Tensor]) -> torch.Tensor:
        if node_mask is None:
            node_mask = torch.ones(x.shape[:2], dtype=torch.bool, device=x.device)
        return self_attention_mask(node_mask, mask_self=self.mask_self)

    def attention_probabilities(self, x: torch.Tensor, node_mask: Optional[torch.Tensor] = None) -> torch.Tensor:  # type: ignore[override]
        """``[B, h, N, N]`` attention weights, zero on the diagonal (``mask_self``) and for padding."""
        return super().attention_probabilities(x, x, self._mask(x, node_mask))

    def forward(self, x: torch.Tensor, node_mask: Optional[torch.Tensor] = None) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x, x, self._mask(x, node_mask))


class SetTransformerEncoder(nn.Module):
    r"""``num_blocks`` :class:`SetAttentionBlock` s over the atoms of each structure of a batch.

    Atoms of a flat batch (``x [N, channels]``, ``batch [N]`` sorted, as torch-geometric makes
    it) are padded per structure with ``torch_geometric.utils.to_dense_batch``; every atom attends
    to every other atom *of its own structure*, never across structures, whatever the distance.

    Shapes: ``x [N, channels]``, ``batch [N]`` -> ``[N, channels]`` (same order).
    """

    def __init__(self, channels: int, num_blocks: int, num_heads: int = 4, **block_kwargs) -> None:
        super().__init__()
        if isinstance(num_blocks, bool) or not isinstance(num_blocks, int) or num_blocks < 1:
            raise ValueError(f"num_blocks must be a positive integer, got {num_blocks!r}")
        self.blocks = nn.ModuleList(SetAttentionBlock(channels, num_heads, **block_kwargs) for _ in range(num_blocks))

    @staticmethod
    def to_dense(
        x: torch.Tensor, batch: torch.Tensor, num_graphs: Optional[int] = None, max_atoms: Optional[int] = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``[B, N_max, channels]`` zero-padded sets and their ``[B, N_max]`` mask. ``batch`` must be
        sorted; with ``num_graphs`` and ``max_atoms`` (N_max) given this is pure tensor code.

        Without them, ``torch_geometric.utils.to_dense_batch`` (which reads both sizes from the
        data). With them, the same layout by index arithmetic: PyG's version fills its padding
        with a repeated constant that AOTInductor cannot lower with symbolic sizes.
        """
        if num_graphs is None or max_atoms is None:
            return to_dense_batch(x, batch, fill_value=0.0, batch_size=num_graphs, max_num_nodes=max_atoms)
        counts = torch.zeros(num_graphs, dtype=torch.long, device=x.device).scatter_add_(0, batch, torch.ones_like(batch))
        first = torch.cumsum(counts, 0) - counts  # [B] index of each structure's first atom
        slot = batch * max_atoms + torch.arange(x.shape[0], device=x.device) - first[batch]  # [N]
        dense = x.new_zeros(num_graphs * max_atoms, x.shape[1]).index_copy(0, slot, x)
        mask = torch.zeros(num_graphs * max_atoms, dtype=torch.bool, device=x.device).index_fill(0, slot, True)
        return dense.view(num_graphs, max_atoms, x.shape[1]), mask.view(num_graphs, max_atoms)

    def forward(
        self, x: torch.Tensor, batch: torch.Tensor, num_graphs: Optional[int] = None, max_atoms: Optional[int] = None
    ) -> torch.Tensor:
        dense, node_mask = self.to_dense(x, batch, num_graphs, max_atoms)  # [B, N_max, channels], [B, N_max]
        for block in self.blocks:
            dense = block(dense, node_mask)
        return dense[node_mask]  # [N, channels]

    @torch.no_grad()
    def attention_weights(
        self, x: torch.Tensor, batch: torch.Tensor, num_graphs: Optional[int] = None, max_atoms: Optional[int] = None
    ) -> list[list[torch.Tensor]]:
        """Per block, per structure: the ``[num_heads, n, n]`` attention matrix of its ``n`` atoms."""
        dense, node_mask = self.to_dense(x, batch, num_graphs, max_atoms)
        counts = node_mask.sum(dim=1).tolist()
        weights = []
        for block in self.blocks:
            probabilities = block.attention_probabilities(dense, node_mask)  # [B, h, N_max, N_max]
            weights.append([probabilities[b, :, :n, :n] for b, n in enumerate(counts)])
            dense = block(dense, node_mask)
        return weights
