"""Small helpers on irreps: the hidden feature layout and per-head splitting."""

from __future__ import annotations

import torch
from e3nn import o3

__all__ = ["hidden_irreps", "irreps_layout", "split_irreps", "head_dot", "scale_heads", "check_divisible", "product_paths"]


def hidden_irreps(channels: int, lmax: int, parity: bool = True) -> o3.Irreps:
    """``channels`` copies of each degree 0..lmax: natural parity (0e+1o+2e) if ``parity``,
    all-even (0e+1e+2e, SO(3) only) otherwise."""
    if channels < 1:
        raise ValueError(f"channels must be at least 1, got {channels}")
    if lmax < 0:
        raise ValueError(f"lmax must be non-negative, got {lmax}")
    return o3.Irreps([(channels, (l, (-1) ** l if parity else 1)) for l in range(lmax + 1)])


def check_divisible(irreps: o3.Irreps, num_heads: int, what: str) -> None:
    for mul, ir in irreps:
        if mul % num_heads:
            raise ValueError(
                f"{what}: multiplicity {mul} of {ir} must be divisible by the number of heads ({num_heads})"
            )


Layout = tuple[tuple[int, int], ...]


def irreps_layout(irreps: o3.Irreps) -> Layout:
    """``((mul, 2l+1), ...)`` of every entry of ``irreps``, as plain integers.

    Modules keep this instead of iterating over an :class:`e3nn.o3.Irreps` in ``forward``: a
    forward made of tensor operations on constants traces and compiles (``torch.compile`` guards
    on every Python object a forward reads, and e3nn's irreps cannot be guarded)."""
    return tuple((int(mul), int(ir.dim)) for mul, ir in o3.Irreps(irreps))


def split_irreps(x: torch.Tensor, layout: Layout) -> tuple[torch.Tensor, ...]:
    """The blocks ``[.., mul * (2l+1)]`` of ``x [.., dim]``, one per entry of ``layout``
    (:func:`irreps_layout`).

    One :func:`torch.split` rather than a slice per block: the backward of a slice allocates a
    zero tensor as large as ``x`` for every block (and again in the second derivative that
    forces need), the backward of a split one tensor in all.
    """
    return torch.split(x, [mul * dim for mul, dim in layout], dim=-1)


def head_dot(q: torch.Tensor, k: torch.Tensor, layout: Layout, num_heads: int) -> torch.Tensor:
    r"""Invariant per-head dot product :math:`\sum_{l,c \in h,m} q^{l}_{cm} k^{l}_{cm}`.

    Each irrep block ``[.., mul * (2l+1)]`` is viewed as ``[.., H, mul/H, 2l+1]``; head ``h`` owns
    channels ``h*mul/H .. (h+1)*mul/H - 1`` of every degree. The contraction over ``m`` of two
    copies of the same irrep is invariant (and parity-even).

    Shapes: ``[E, dim]``, ``[E, dim]`` -> ``[E, H]``.
    """
    out = q.new_zeros(q.shape[0], num_heads)
    for qs, ks, (mul, dim) in zip(split_irreps(q, layout), split_irreps(k, layout), layout):
        qs = qs.reshape(-1, num_heads, mul // num_heads, dim)
        ks = ks.reshape(-1, num_heads, mul // num_heads, dim)
        out = out + (qs * ks).sum(dim=(-1, -2))
    return out


def scale_heads(v: torch.Tensor, weights: torch.Tensor, layout: Layout, num_heads: int) -> torch.Tensor:
    """Multiply the channels of each head by that head's per-edge weight.

    Shapes: ``[E, dim]``, ``[E, H]`` -> ``[E, dim]``.
    """
    blocks = []
    for vs, (mul, dim) in zip(split_irreps(v, layout), layout):
        vs = vs.reshape(-1, num_heads, mul // num_heads, dim)
        blocks.append((vs * weights[:, :, None, None]).reshape(-1, mul * dim))
    return torch.cat(blocks, dim=-1)


def product_paths(irreps1: o3.Irreps, irreps2: o3.Irreps, allowed, mode: str, *, symmetric: bool = False) -> tuple[list, list]:
    """The output irreps ``[(mul, ir)]`` and e3nn instructions of every tensor-product path
    ``irreps1[i] x irreps2[j] -> ir`` with ``ir`` in ``allowed``, each with the multiplicity of
    ``irreps1[i]`` and trainable weights in ``mode`` (``"uvu"``, ``"uuu"``). ``symmetric`` (a
    product of one input with itself) keeps one of the pairs ``(i, j)`` and ``(j, i)``."""
    mid, instructions = [], []
    for i, (mul, ir1) in enumerate(irreps1):
        for j, (_, ir2) in enumerate(irreps2):
            if symmetric and j < i:
                continue
            for ir in ir1 * ir2:
                if ir in allowed:
                    instructions.append((i, j, len(mid), mode, True))
                    mid.append((mul, ir))
    if not mid:
        raise ValueError(f"no tensor-product path from {irreps1} x {irreps2} reaches {sorted(allowed)}")
    return mid, instructions
