"""`GATv2Layer`: against torch-geometric's own GATv2Conv, attention normalisation, empty neighbourhoods;
its angular invariants against the three- and four-body sums they stand for."""

import pytest
import torch
from e3nn import o3
from torch_geometric.nn import GATv2Conv
from torch_geometric.utils import scatter

from equiformer_lite.nn import DensityInvariants, EdgeSphericalHarmonics, GATv2Layer, envelope_softmax
from equiformer_lite.utils import default_dtype

N, CHANNELS, HEADS, EDGE_DIM = 7, 12, 3, 2


def random_graph(seed: int = 0, num_edges: int = 20):
    """Random features and directed edges without self-loops; atom N-1 receives nothing."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(N, CHANNELS, generator=g, dtype=torch.float64)
    sender = torch.randint(0, N, (num_edges,), generator=g)
    receiver = torch.randint(0, N - 1, (num_edges,), generator=g)
    keep = sender != receiver
    edge_index = torch.stack([sender[keep], receiver[keep]])
    edge_features = torch.rand(edge_index.shape[1], EDGE_DIM, generator=g, dtype=torch.float64) * 3
    envelope = torch.rand(edge_index.shape[1], generator=g, dtype=torch.float64)
    return h, edge_features, envelope, edge_index


def layer_and_conv(**kwargs):
    torch.manual_seed(0)
    layer = GATv2Layer(CHANNELS, EDGE_DIM, num_heads=HEADS, attention_activation="leaky_relu", **kwargs).double()
    conv = GATv2Conv(
        CHANNELS, CHANNELS // HEADS, heads=HEADS, concat=True, negative_slope=0.2, add_self_loops=False, edge_dim=EDGE_DIM
    ).double()
    with torch.no_grad():  # the same weights: PyG's lin_l acts on senders (x_j), lin_r on receivers
        conv.lin_l.weight.copy_(layer.lin_sender.weight)
        conv.lin_l.bias.copy_(layer.lin_sender.bias.normal_())
        conv.lin_r.weight.copy_(layer.lin_receiver.weight)
        conv.lin_r.bias.copy_(layer.lin_receiver.bias.normal_())
        conv.lin_edge.weight.copy_(layer.lin_edge.weight)
        conv.att.copy_(layer.att)
        conv.bias.zero_()
    return layer, conv


def test_attention_and_messages_match_pyg_gatv2conv_without_envelope():
    """With u = 1 and LeakyReLU, our attention and messages are GATv2Conv's (code we did not write)."""
    layer, conv = layer_and_conv()
    h, edge_features, envelope, edge_index = random_graph()
    ones = torch.ones_like(envelope)
    messages, alpha = layer.attend(h, edge_features, ones, edge_index)
    reference, (ref_index, ref_alpha) = conv(h, edge_index, edge_features, return_attention_weights=True)
    assert torch.equal(ref_index, edge_index)
    assert torch.allclose(alpha, ref_alpha, atol=1e-14, rtol=1e-12)
    assert torch.allclose(messages, reference, atol=1e-13, rtol=1e-12)
    assert reference.abs().max() > 0.1  # a meaningful comparison


def test_envelope_reweights_gatv2conv_attention_as_intended():
    r"""With an envelope, :math:`\alpha_u = u\,\alpha_1 / \sum u\,\alpha_1` and messages carry u once more."""
    layer, conv = layer_and_conv()
    h, edge_features, envelope, edge_index = random_graph(seed=1)
    messages, alpha = layer.attend(h, edge_features, envelope, edge_index)
    _, (_, alpha_1) = conv(h, edge_index, edge_features, return_attention_weights=True)
    receiver = edge_index[1]
    weighted = envelope[:, None] * alpha_1
    expected_alpha = weighted / scatter(weighted, receiver, 0, dim_size=N, reduce="sum")[receiver]
    assert torch.allclose(alpha, expected_alpha, atol=1e-14, rtol=1e-12)
    sender_features = conv.lin_l(h).view(N, HEADS, -1)[edge_index[0]]  # [E, H, C]
    expected = scatter(sender_features * (expected_alpha * envelope[:, None])[..., None], receiver, 0, dim_size=N)
    assert torch.allclose(messages, expected.reshape(N, CHANNELS), atol=1e-13, rtol=1e-12)
    # ...and the same weights as the package's explicit envelope softmax of the SE(3) layer.
    logits = torch.log(alpha_1)  # GATv2Conv's logits up to a per-receiver constant
    assert torch.allclose(alpha, envelope_softmax(logits, envelope, receiver, N), atol=1e-14)


@pytest.mark.parametrize("update", ["skip", "gru"])
def test_attention_weights_are_a_distribution_and_lonely_atoms_get_no_nan(update):
    layer = GATv2Layer(CHANNELS, EDGE_DIM, num_heads=HEADS, update=update).double()
    h, edge_features, envelope, edge_index = random_graph(seed=2)
    envelope[0] = 1e-300  # a neighbour right at the cutoff
    out, alpha = layer(h, edge_features, envelope, edge_index, return_attention=True)
    assert alpha.shape == (edge_index.shape[1], HEADS)
    assert (alpha >= 0).all() and (alpha <= 1).all()
    sums = scatter(alpha, edge_index[1], 0, dim_size=N, reduce="sum")  # [N, H]
    has_neighbours = torch.bincount(edge_index[1], minlength=N) > 0
    assert torch.allclose(sums[has_neighbours], torch.ones_like(sums[has_neighbours]), atol=1e-14)
    assert not has_neighbours[-1]
    assert torch.isfinite(out).all()
    messages, _ = layer.attend(h, edge_features, envelope, edge_index)
    assert (messages[-1] == 0).all()  # nothing received: zero messages
    if update == "skip":  # h' = LN(h + Swish(0)) = LN(h)
        assert torch.allclose(out[-1], layer.norm(h[-1:])[0], atol=1e-14)


def test_layer_is_permutation_equivariant():
    layer = GATv2Layer(CHANNELS, EDGE_DIM, num_heads=HEADS, update="gru").double()
    h, edge_features, envelope, edge_index = random_graph(seed=3)
    perm = torch.randperm(N, generator=torch.Generator().manual_seed(0))
    inverse = torch.argsort(perm)  # new index of old atom a is inverse[a]
    out = layer(h, edge_features, envelope, edge_index)
    out_permuted = layer(h[perm], edge_features, envelope, inverse[edge_index])
    assert torch.allclose(out_permuted, out[perm], atol=1e-14)


def test_gradients_stay_finite_for_an_edge_at_the_cutoff():
    layer = GATv2Layer(CHANNELS, EDGE_DIM, num_heads=HEADS).double()
    h, edge_features, envelope, edge_index = random_graph(seed=4)
    envelope = envelope.clone().requires_grad_(True)
    with torch.no_grad():
        envelope[0] = 0.0  # exactly at r_c
    layer(h, edge_features, envelope, edge_index).sum().backward()
    assert torch.isfinite(envelope.grad).all()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(channels=10, num_heads=4), r"channels \(10\) must be divisible by the number of heads \(4\)"),
        (dict(channels=0), "channels must be a positive integer"),
        (dict(update="lstm"), "unknown update 'lstm'"),
        (dict(attention_activation="tanh"), "unknown attention_activation 'tanh'"),
    ],
)
def test_constructor_validation(kwargs, message):
    args = dict(channels=8, edge_dim=1)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        GATv2Layer(args.pop("channels"), args.pop("edge_dim"), **args)


# --- angular invariants (angular_lmax > 0) ----------------------------------------------------------

def angular_inputs(seed: int = 0, lmax: int = 3):
    """A random graph with edge vectors: features, edge features, envelope, harmonics, edges, vectors."""
    h, edge_features, envelope, edge_index = random_graph(seed)
    vectors = torch.randn(edge_index.shape[1], 3, generator=torch.Generator().manual_seed(seed + 1), dtype=torch.float64)
    return h, edge_features, envelope, EdgeSphericalHarmonics(lmax)(vectors), edge_index, vectors


def test_density_invariants_are_sums_of_legendre_polynomials_over_pairs_of_neighbours():
    r"""q_{i,c,l} = (1/n^2) sum_{j,k} w_jc w_kc P_l(cos theta_jk): the three-body form, computed directly."""
    lmax, n_bar = 3, 2.5
    torch.manual_seed(0)
    K = 5  # density channels, fewer than the features' CHANNELS
    density = DensityInvariants(CHANNELS, EDGE_DIM, lmax, density_channels=K, avg_num_neighbors=n_bar).double()
    h, edge_features, envelope, sh, edge_index, vectors = angular_inputs(lmax=lmax)
    q = density(h, edge_features, envelope, sh, edge_index).view(N, K, lmax + 1)
    w = density.lin_radial(edge_features) * envelope[:, None] / n_bar * density.lin_features(h)[edge_index[0]]  # [E, K]
    unit = vectors / vectors.norm(dim=-1, keepdim=True)
    expected = torch.zeros(N, K, lmax + 1, dtype=torch.float64)
    for i in range(N):
        mine = edge_index[1] == i
        cos = (unit[mine] @ unit[mine].T).clamp(-1, 1)  # [n, n]
        for l in range(lmax + 1):
            legendre = torch.special.legendre_polynomial_p(cos, l)  # P_l(cos theta_jk)
            expected[i, :, l] = torch.einsum("jc,jk,kc->c", w[mine], legendre, w[mine])
    assert (edge_index[1] == N - 1).sum() == 0 and q[N - 1].abs().max() == 0  # no neighbours: q = 0
    torch.testing.assert_close(q, expected, rtol=1e-12, atol=1e-14)


def test_bispectrum_is_a_sum_over_triples_of_neighbours():
    r"""b_{i,c,(l1 l2 l3)} = sum_{j,k,m} w_jc w_kc w_mc sum_{m1 m2 m3} C_{m1 m2 m3} Y_{l1}(r_j) Y_{l2}(r_k) Y_{l3}(r_m),
    computed by brute force over triples (the module uses a closed form for l1 = 0)."""
    lmax, n_bar, K = 3, 2.5, 4
    torch.manual_seed(0)
    with default_dtype(torch.float64):  # the 3j constants are computed in the default dtype
        density = DensityInvariants(CHANNELS, EDGE_DIM, lmax, density_channels=K, avg_num_neighbors=n_bar, correlation=3)
    h, edge_features, envelope, sh, edge_index, vectors = angular_inputs(lmax=lmax)
    T = len(density.triples)
    assert density.triples == [(0, 0, 0), (0, 1, 1), (0, 2, 2), (0, 3, 3), (1, 1, 2), (1, 2, 3), (2, 2, 2), (2, 3, 3)]
    out = density(h, edge_features, envelope, sh, edge_index).view(N, K, lmax + 1 + T)
    q, b = out[..., : lmax + 1], out[..., lmax + 1:]
    w = density.lin_radial(edge_features) * envelope[:, None] / n_bar * density.lin_features(h)[edge_index[0]]  # [E, K]
    expected = torch.zeros(N, K, T, dtype=torch.float64)
    for i in range(N):
        mine = edge_index[1] == i
        y = {l: o3.spherical_harmonics(l, vectors[mine], normalize=True, normalization="component") for l in range(lmax + 1)}
        for t, (l1, l2, l3) in enumerate(density.triples):
            expected[i, :, t] = torch.einsum("jc,kc,mc,ja,kb,mz,abz->c", w[mine], w[mine], w[mine], y[l1], y[l2], y[l3],
                                             o3.wigner_3j(l1, l2, l3, dtype=torch.float64))
    assert expected.abs().max() > 1e-3 and b[N - 1].abs().max() == 0  # non-trivial; no neighbours: b = 0
    torch.testing.assert_close(b, expected, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("correlation", [2, 3])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_angular_layer_is_invariant_under_rotations_and_reflections(dtype, correlation):
    torch.manual_seed(0)
    with default_dtype(dtype):  # the bispectrum's 3j constants are computed in the default dtype
        layer = GATv2Layer(CHANNELS, EDGE_DIM, num_heads=HEADS, angular_lmax=2, avg_num_neighbors=3.0,
                           angular_correlation=correlation)
    h, edge_features, envelope, _, edge_index, vectors = (t.to(dtype) if t.is_floating_point() else t for t in angular_inputs())
    sh = EdgeSphericalHarmonics(2).to(dtype)
    reference = layer(h, edge_features, envelope, edge_index, sh=sh(vectors))
    tol = 1e-13 if dtype == torch.float64 else 1e-5
    torch.manual_seed(1)
    for _ in range(3):
        rotation = o3.rand_matrix(dtype=dtype)
        for transform in (rotation, -rotation):  # proper rotation, then rotation with inversion
            moved = layer(h, edge_features, envelope, edge_index, sh=sh(vectors @ transform.T))
            assert (moved - reference).abs().max() < tol * reference.abs().max()
    # ... and the angles matter: the same distances with the edges pointing elsewhere change the output
    scrambled = layer(h, edge_features, envelope, edge_index, sh=sh(torch.randn_like(vectors)))
    assert (scrambled - reference).abs().max() > 1e-3 * reference.abs().max()


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(lmax=0), "lmax must be a positive integer"),
        (dict(avg_num_neighbors=0.0), "avg_num_neighbors must be positive"),
        (dict(density_channels=0), "density_channels must be a positive integer"),
        (dict(correlation=4), r"correlation must be 2 \(power spectrum\) or 3 \(and bispectrum\), got 4"),
    ],
)
def test_density_invariants_validation(kwargs, message):
    args = dict(channels=8, edge_dim=2, lmax=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        DensityInvariants(args.pop("channels"), args.pop("edge_dim"), args.pop("lmax"), **args)


def test_angular_lmax_validation():
    with pytest.raises(ValueError, match="angular_lmax must be a non-negative integer, got -1"):
        GATv2Layer(8, 2, angular_lmax=-1)
