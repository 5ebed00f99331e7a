"""Set Attention Blocks (A2I eqs. 1-6): a by-hand reference, masks, permutations, padding, lone atoms."""

import math

import pytest
import torch

from equiformer_lite.nn import MultiheadAttentionBlock, SetAttentionBlock, SetTransformerEncoder
from equiformer_lite.nn.set_transformer import self_attention_mask

torch.set_num_threads(1)


def _block(dtype=torch.float64, seed=0, **kwargs) -> SetAttentionBlock:
    torch.manual_seed(seed)
    return SetAttentionBlock(8, num_heads=2, **kwargs).to(dtype)


def _reference_sab(block: SetAttentionBlock, x: torch.Tensor) -> torch.Tensor:
    """Eqs. 1-6 written out for one set ``[n, d]``, one head at a time, the diagonal left out."""
    n, d = x.shape
    h, dh = block.num_heads, block.head_dim
    q, k, v = block.lin_query(x), block.lin_key(x), block.lin_value(x)
    heads = []
    for i in range(h):
        cols = slice(i * dh, (i + 1) * dh)
        logits = q[:, cols] @ k[:, cols].T / math.sqrt(dh)  # [n, n]
        logits = logits.masked_fill(torch.eye(n, dtype=torch.bool), -math.inf)  # no self-attention
        heads.append(logits.softmax(dim=-1) @ v[:, cols])
    hidden = x + block.lin_out(torch.cat(heads, dim=1))  # eq. 5
    return hidden + block.feed_forward(hidden)  # eq. 4


def test_block_matches_the_equations_written_out():
    block = _block()
    x = torch.randn(6, 8, dtype=torch.float64)
    got = block(x[None])[0]
    expected = _reference_sab(block, x)
    assert torch.allclose(got, expected, atol=1e-13, rtol=0), (got - expected).abs().max()


def test_explicit_softmax_weights_reproduce_the_attention():
    """``attention_probabilities`` (for plots) is the softmax the block uses: weights @ V rebuilds it."""
    block = _block()
    x = torch.randn(2, 5, 8, dtype=torch.float64)
    mask = torch.tensor([[True] * 5, [True, True, True, False, False]])
    weights = block.attention_probabilities(x, mask)  # [2, h, 5, 5]
    v = block._heads(block.lin_value(x))
    rebuilt = x + block.lin_out((weights @ v).transpose(1, 2).flatten(-2))
    expected = block(x, mask)
    for b, n in enumerate((5, 3)):
        hidden = rebuilt[b, :n]
        assert torch.allclose(hidden + block.feed_forward(hidden), expected[b, :n], atol=1e-13)
        w = weights[b, :, :n, :n]
        assert torch.diagonal(w, dim1=-2, dim2=-1).abs().max() == 0  # the diagonal is masked
        assert torch.allclose(w.sum(-1), torch.ones(2, n, dtype=torch.float64), atol=1e-14)
        assert not weights[b, :, :, n:].any()  # padding is never attended


def test_an_atoms_own_key_and_value_have_no_effect():
    """With the diagonal masked, changing only row i of the key/value set leaves output row i unchanged."""
    torch.manual_seed(1)
    block = MultiheadAttentionBlock(8, num_heads=2).double()
    x = torch.randn(1, 5, 8, dtype=torch.float64)
    y = x.clone()
    y[0, 2] += torch.randn(8, dtype=torch.float64)  # atom 2's own key and value change
    mask = self_attention_mask(torch.ones(1, 5, dtype=torch.bool))
    before, after = block(x, x, mask), block(x, y, mask)
    assert torch.equal(before[0, 2], after[0, 2])
    assert (before[0, [0, 1, 3, 4]] - after[0, [0, 1, 3, 4]]).abs().max() > 1e-6  # the others see it
    unmasked = block(x, y, torch.ones_like(mask))  # without the mask, atom 2 would see itself
    assert (unmasked[0, 2] - block(x, x, torch.ones_like(mask))[0, 2]).abs().max() > 1e-6


@pytest.mark.parametrize("dtype, bound", [(torch.float64, 1e-14), (torch.float32, 1e-6)])
@pytest.mark.parametrize("layer_norm", [False, True])
def test_permutation_equivariance(dtype, bound, layer_norm):
    block = _block(dtype, layer_norm=layer_norm)
    x = torch.randn(1, 9, 8, dtype=dtype)
    perm = torch.randperm(9, generator=torch.Generator().manual_seed(3))
    out, permuted = block(x), block(x[:, perm])
    error = ((out[:, perm] - permuted).norm() / out.norm()).item()
    print(f"SAB permutation error [{dtype}, layer_norm={layer_norm}]: {error:.1e}")
    assert error < bound


def test_layer_norm_option():
    plain, normed = _block(), _block(layer_norm=True)
    assert plain.norm_attention is None and isinstance(normed.norm_attention, torch.nn.LayerNorm)
    x = 3.0 * torch.randn(1, 4, 8, dtype=torch.float64)
    out = normed(x)
    # Post-norm (Set Transformer): every output row has zero mean and unit variance before the affine part.
    assert torch.allclose(out.mean(-1), torch.zeros(1, 4, dtype=torch.float64), atol=1e-12)
    assert (out - plain(x)).abs().max() > 1e-3


def test_batch_of_different_sizes_equals_each_set_alone():
    torch.manual_seed(0)
    encoder = SetTransformerEncoder(8, num_blocks=3, num_heads=2).double()
    sizes = (4, 1, 7, 2)
    x = torch.randn(sum(sizes), 8, dtype=torch.float64)
    batch = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    together = encoder(x, batch, len(sizes))
    start = 0
    for n in sizes:
        alone = encoder(x[start : start + n], torch.zeros(n, dtype=torch.long), 1)
        assert torch.allclose(together[start : start + n], alone, atol=1e-13, rtol=0)
        start += n
    # An unsorted batch vector is rejected where a model's inputs enter (tests/models/test_pure_forward.py).


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_a_lone_atom_gets_zero_attention_and_finite_gradients(dtype):
    """One atom, its own key masked: every key is masked. SDPA alone would give NaN; the block gives
    Multihead = 0 exactly (so SAB = x + rFF(x)), and finite first and second derivatives."""
    block = _block(dtype)
    x = torch.randn(2, 3, 8, dtype=dtype, requires_grad=True)
    mask = torch.tensor([[True, False, False], [True, True, True]])  # a 1-atom set padded to 3
    out = block(x, mask)
    lone = x[0, 0]
    tol = 1e-14 if dtype == torch.float64 else 1e-6  # the same arithmetic up to matmul round-off
    assert torch.allclose(out[0, 0], lone + block.feed_forward(lone), atol=tol, rtol=0)
    (grad,) = torch.autograd.grad(out[0, 0].square().sum() + out[1].sum(), x, create_graph=True)
    (second,) = torch.autograd.grad(grad.square().sum(), x)
    assert torch.isfinite(out).all() and torch.isfinite(grad).all() and torch.isfinite(second).all()
    assert grad[0, 1:].abs().max() == 0  # padding does not reach the real atom
    assert block.attention_probabilities(x, mask)[0, :, 0].abs().max() == 0


def test_twice_differentiable_for_force_training():
    """Force training differentiates the forces again; the fused SDPA kernels cannot, the math path can."""
    block = _block()
    x = torch.randn(1, 5, 8, dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(block(x).sum(), x, create_graph=True)
    grad.square().sum().backward()
    assert torch.isfinite(block.lin_query.weight.grad).all() and block.lin_query.weight.grad.abs().max() > 0
    assert all(torch.isfinite(p.grad).all() for p in block.parameters() if p.grad is not None)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(channels=10, num_heads=4), r"channels \(10\) must be divisible by the number of heads \(4\)"),
        (dict(channels=8, num_heads=0), "num_heads must be a positive integer, got 0"),
        (dict(channels=8, num_heads=2, ff_hidden=0), "ff_hidden must be a positive integer, got 0"),
        (dict(channels=8, num_heads=2, activation="gelu"), "unknown activation 'gelu'"),
    ],
)
def test_constructor_validation(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SetAttentionBlock(**kwargs)
    with pytest.raises(ValueError, match="num_blocks must be a positive integer, got 0"):
        SetTransformerEncoder(8, 0)


def test_repr_names_the_options():
    assert repr(_block(layer_norm=True)) == "SetAttentionBlock(8, num_heads=2, ff_hidden=8, activation='silu', layer_norm=True)"
